"""Train the quickstart iris classifier and save it to the BentoML model store."""

import bentoml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MODEL_NAME = "iris_clf"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SPECIES = ["setosa", "versicolor", "virginica"]


def train(seed: int = 0):
    """Fit a scaled logistic regression on iris; return the model and its test accuracy."""
    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = FEATURES
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(X_train, y_train)
    return model, accuracy_score(y_test, model.predict(X_test))


def save(model, accuracy: float) -> bentoml.Model:
    """Save the model under a new version of MODEL_NAME, with its accuracy as metadata."""
    return bentoml.sklearn.save_model(
        MODEL_NAME,
        model,
        labels={"stage": "quickstart"},
        metadata={"accuracy": round(accuracy, 4), "features": FEATURES, "classes": SPECIES},
    )


if __name__ == "__main__":
    model, accuracy = train()
    saved = save(model, accuracy)
    print(f"Saved {saved.tag} (test accuracy {accuracy:.3f})")
