"""The monitoring job: data drift from the prediction log, performance once labels arrive.

    python -m ops.drift --out drift-report
    python -m ops.drift --labels labels.jsonl --pushgateway 127.0.0.1:9091

It compares the features logged in the last --window (up to the newest prediction) with the
data the served model was trained on (rebuilt from the model's lineage) using Evidently, and
writes an HTML report and a JSON summary. Given labels (request_id, default), it measures
ROC AUC per --window over the whole log, since outcomes arrive late. Request ids erased by
`ops.privacy` are left out of both; a sealed log opens with the service's log key
(CREDIT_RISK_LOG_KEY_FILE). With --pushgateway it pushes the results as Prometheus metrics,
which is how a batch job reports to Prometheus.
"""

import argparse
import json
from pathlib import Path

import bentoml
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from sklearn.metrics import roc_auc_score

from credit_risk.jsonl_log import read_key, read_prediction_log
from credit_risk.schema import CATEGORICAL, FEATURES, MODEL_NAME, NUMERIC, TARGET
from credit_risk.settings import Settings
from ops.privacy import without_erased
from training import data

DEFINITION = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)


def training_reference(model_tag: str = f"{MODEL_NAME}:latest") -> pd.DataFrame:
    """The training rows of a stored model, rebuilt from the data manifest in its lineage."""
    spec = bentoml.models.get(model_tag).info.metadata["lineage"]["data"]
    frame = data.generate(spec["rows"], spec["seed"], spec["covariate_drift"],
                          spec["concept_drift"])
    if data.data_hash(frame) != spec["sha256"]:
        raise RuntimeError(f"rebuilt training data of {model_tag} does not match its lineage")
    return frame


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, html: Path | None = None):
    """Evidently's data-drift preset as a plain dict: per-feature score and verdict, overall."""
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        current_data=Dataset.from_pandas(current[FEATURES], data_definition=DEFINITION),
        reference_data=Dataset.from_pandas(reference[FEATURES], data_definition=DEFINITION))
    if html:
        snapshot.save_html(str(html))
    result = snapshot.dict()
    # Evidently 0.7 keeps the verdicts in its tests (status FAIL = drift), keyed by metric id.
    drifted = {test["metric_config"]["metric_id"]: test["status"] == "FAIL"
               for test in result["tests"]}
    summary = {"rows": len(current), "features": {}}
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"] == "evidently:metric_v2:DriftedColumnsCount":
            summary["drifted_share"] = round(metric["value"]["share"], 4)
            summary["dataset_drift"] = drifted[metric["id"]]
        elif config["type"] == "evidently:metric_v2:ValueDrift":
            summary["features"][config["column"]] = {
                "score": round(metric["value"], 4), "method": config["method"],
                "threshold": config["threshold"], "drifted": drifted[metric["id"]]}
    return summary


def latest(predictions: pd.DataFrame, window: str = "1h") -> pd.DataFrame:
    """The predictions logged within `window` of the newest one."""
    times = pd.to_datetime(predictions["time"])
    return predictions[times > times.max() - pd.Timedelta(window)]


def performance_by_window(predictions: pd.DataFrame, labels: pd.DataFrame,
                          window: str = "1h") -> pd.DataFrame:
    """ROC AUC of logged predictions whose outcome is known, per time window."""
    joined = predictions.merge(labels, on="request_id")
    joined["window"] = pd.to_datetime(joined["time"]).dt.floor(window)
    return pd.DataFrame([
        {"window": start, "rows": len(part),
         "roc_auc": round(roc_auc_score(part[TARGET], part["probability_of_default"]), 4)}
        for start, part in joined.groupby("window") if part[TARGET].nunique() == 2
    ])


def push(gateway: str, drift: dict | None = None, performance: pd.DataFrame | None = None):
    """Push the latest results to a Prometheus Pushgateway (one group per job)."""
    if drift is not None:
        registry = CollectorRegistry()
        score = Gauge("credit_risk_feature_drift_score", "Evidently drift score", ["feature"],
                      registry=registry)
        for feature, result in drift["features"].items():
            score.labels(feature=feature).set(result["score"])
        Gauge("credit_risk_drifted_feature_share", "Share of drifted features",
              registry=registry).set(drift["drifted_share"])
        Gauge("credit_risk_dataset_drift", "1 if Evidently flags the dataset",
              registry=registry).set(int(drift["dataset_drift"]))
        push_to_gateway(gateway, job="credit_risk_drift", registry=registry)
    if performance is not None and len(performance):
        registry = CollectorRegistry()
        latest = performance.iloc[-1]
        Gauge("credit_risk_labelled_roc_auc", "ROC AUC on the latest labelled window",
              registry=registry).set(latest["roc_auc"])
        Gauge("credit_risk_labelled_rows", "Labelled predictions in that window",
              registry=registry).set(latest["rows"])
        push_to_gateway(gateway, job="credit_risk_performance", registry=registry)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="the prediction log (default: the service's log_dir setting)")
    parser.add_argument("--model", default=f"{MODEL_NAME}:latest",
                        help="the served model, whose training data is the reference")
    parser.add_argument("--out", type=Path, default=Path("drift-report"))
    parser.add_argument("--labels", type=Path, help="JSON lines of request_id and default")
    parser.add_argument("--window", default="1h",
                        help="drift: the last window of the log; ROC AUC: one value per window")
    parser.add_argument("--pushgateway", help="host:port of a Prometheus Pushgateway")
    args = parser.parse_args()

    settings = Settings.from_env()
    log_dir = args.log_dir or settings.logs
    key = read_key(settings.log_key_file) if settings.log_key_file else None
    predictions = pd.DataFrame(read_prediction_log(log_dir, key))
    if predictions.empty:
        parser.exit(2, f"no predictions logged in {log_dir}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    drift = feature_drift(training_reference(args.model), latest(predictions, args.window),
                          args.out / "drift.html")
    (args.out / "drift.json").write_text(json.dumps(drift, indent=2) + "\n")
    performance = None
    if args.labels:
        labels = without_erased(pd.read_json(args.labels, lines=True), log_dir)
        performance = performance_by_window(predictions, labels, args.window)
        performance.to_json(args.out / "performance.json", orient="records", date_format="iso")
    if args.pushgateway:
        push(args.pushgateway, drift, performance)
    print(f"{drift['rows']} predictions: drifted share {drift['drifted_share']}, "
          f"dataset drift {drift['dataset_drift']} (report in {args.out})")


if __name__ == "__main__":
    main()
