"""The feature policy (training/feature_policy.yaml) and its checks (ML Test Score, Data 4):
no forbidden or unlisted field among the model's features or the request's fields, and no
undeclared proxy for the protected attribute among the allowed inputs."""

from pathlib import Path

import pandas as pd
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

POLICY = Path(__file__).with_name("feature_policy.yaml")


def load(path: Path = POLICY) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --8<-- [start:violations]
def violations(fields: list[str], policy: dict) -> dict[str, str]:
    """Each field the policy forbids or does not list, with the reason."""
    listed = set(policy["allowed"]) | set(policy["restricted"])
    problems = {name: f"forbidden: {policy['forbidden'][name]}"
                for name in fields if name in policy["forbidden"]}
    return problems | {name: "not in the feature policy: review it and list it"
                       for name in fields if name not in listed | set(policy["forbidden"])}
# --8<-- [end:violations]


def proxy_strength(frame: pd.DataFrame, columns: list[str], attribute: str) -> float:
    """Balanced accuracy of predicting `attribute` from `columns`, 3-fold cross-validated:
    a multinomial logistic regression on scaled numbers and one-hot categories, which finds
    any input that moves steadily with the attribute (chance: one over its classes)."""
    numeric = [c for c in columns if pd.api.types.is_float_dtype(frame[c])
               or (pd.api.types.is_integer_dtype(frame[c]) and frame[c].nunique() > 5)]
    encode = ColumnTransformer([
        ("numeric", StandardScaler(), numeric),
        ("categorical", OneHotEncoder(handle_unknown="ignore"),
         [c for c in columns if c not in numeric]),
    ])
    model = Pipeline([("features", encode), ("classifier", LogisticRegression(max_iter=500))])
    predicted = cross_val_predict(model, frame[columns], frame[attribute], cv=3)
    return float(balanced_accuracy_score(frame[attribute], predicted))


def unrestricted(columns: list[str], policy: dict) -> list[str]:
    """The columns the proxy check covers: all but the restricted ones."""
    return [c for c in columns if c not in policy["restricted"]]
