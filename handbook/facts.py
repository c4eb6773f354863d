"""What the pipeline knows about a model service, gathered for its model card.

Sources: the metrics JSON that training wrote, the BentoML service (its OpenAPI spec, and the
stored model it loads with the lineage and artifact hash recorded at training), the
Prometheus alert rules and the runbook next to them, and the known issues: those the
project's known_issues.yaml lists, and those found in the measured results it names.
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from handbook.alerts import find_alert_files, load_alerts
from handbook.inputs import InputError, load_json, load_yaml

HANDBOOK_ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = "RUNBOOK.md"
KNOWN_ISSUES = "known_issues.yaml"


def metric_slices(metrics: dict) -> list[tuple[str, dict]]:
    """(slice, {metric: value}) rows from a metrics JSON: numbers at the top level or under a
    key form one slice ("overall"), a key holding slices forms a group ("by_age_band" gives
    "age band: 18-25", ...)."""
    if not isinstance(metrics, dict):
        raise InputError("the metrics file must hold a JSON object of metric names and "
                         f"numbers, not {type(metrics).__name__}")
    top = {name: value for name, value in metrics.items() if not isinstance(value, dict)}
    rows = [("overall", top)] if top else []
    for key, value in metrics.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            group = key.removeprefix("by_").replace("_", " ")
            rows += [(f"{group}: {name}", part) for name, part in value.items()]
        elif isinstance(value, dict):
            rows.append((key, value))
    for label, values in rows:
        if not all(isinstance(v, int | float) for v in values.values()):
            raise InputError(f"metrics slice {label!r} holds something other than numbers")
    return rows


def metrics_table(metrics: dict) -> dict:
    rows = metric_slices(metrics)
    columns = list(dict.fromkeys(name for _, values in rows for name in values))
    return {"columns": columns, "rows": rows, "overall": dict(rows[0][1]) if rows else {}}


def checked(value, fields: dict[str, type | tuple], where: str) -> dict:
    """`value`, which must be a mapping of exactly `fields` (name: type)."""
    if not isinstance(value, dict) or set(value) != set(fields):
        raise InputError(f"{where} must hold exactly {', '.join(fields)}")
    for name, kind in fields.items():
        if not isinstance(value[name], kind) or isinstance(value[name], bool):
            raise InputError(f"{where}: {name} has the wrong type: {value[name]!r}")
    return value


def slice_issues(measured: dict, limits: dict) -> list[dict]:
    """Slices of the metrics file whose metric is below the floor, or whose rows are few."""
    metric, found = limits["metric"], []
    for label, values in metric_slices(measured):
        if metric in values and values[metric] < limits["floor"]:
            found.append(f"`{metric}` is {values[metric]} on {label}, below the floor of "
                         f"{limits['floor']} set in `{KNOWN_ISSUES}`")
        if "rows" in values and values["rows"] < limits["min_rows"]:
            found.append(f"{label} holds {values['rows']} rows, fewer than the "
                         f"{limits['min_rows']} that `{KNOWN_ISSUES}` asks of a slice")
    return [{"issue": issue, "evidence": "Results by slice", "tracking": limits["tracking"]}
            for issue in found]


def ablation_issues(project: Path, spec: dict) -> list[dict]:
    """Inputs whose ablation drop is not above zero by two standard errors (the rule of the
    flagship's Data 2 check): the file maps `features` to `roc_auc_drop` and `standard_error`."""
    results = load_json(project / spec["file"], "ablation results")
    try:
        weak = {name: (part["roc_auc_drop"], part["standard_error"])
                for name, part in results["features"].items()
                if part["roc_auc_drop"] - 2 * part["standard_error"] <= 0}
    except (KeyError, TypeError, AttributeError):
        raise InputError(f"ablation results {spec['file']} must map features to their "
                         "roc_auc_drop and standard_error (numbers)") from None
    return [{"issue": f"`{name}` earns no ROC AUC beyond noise: leaving it out loses "
                      f"{drop} ± {error} (mean ± standard error), not above zero by two "
                      "standard errors",
             "evidence": f"`{spec['file']}`", "tracking": spec["tracking"]}
            for name, (drop, error) in weak.items()]


def policy_issues(project: Path, spec: dict) -> list[dict]:
    """Each input the feature policy restricts, with why (its `restricted:` entries)."""
    policy = load_yaml(project / spec["file"], "feature policy") or {}
    restricted = policy.get("restricted") if isinstance(policy, dict) else None
    if not isinstance(restricted, dict) or not all(
            isinstance(entry, dict) and "why" in entry for entry in restricted.values()):
        raise InputError(f"feature policy {spec['file']} must map `restricted` inputs to "
                         "a `why`")
    return [{"issue": f"Restricted input `{name}`: {' '.join(str(entry['why']).split())}",
             "evidence": f"`{spec['file']}`", "tracking": spec["tracking"]}
            for name, entry in restricted.items()]


def staleness_issues(project: Path, spec: dict) -> list[dict]:
    """Where the model's quality crosses its floor as drift grows (the flagship's
    `python -m ops.staleness`): the file holds `floor` and `retrain_at_concept_drift`."""
    results = load_json(project / spec["file"], "staleness results")
    try:
        floor, drift = results["floor"], results["retrain_at_concept_drift"]
    except (KeyError, TypeError):
        raise InputError(f"staleness results {spec['file']} must hold floor and "
                         "retrain_at_concept_drift") from None
    issue = (f"The model goes stale: its ROC AUC falls below the floor of {floor} at a "
             f"concept drift of {drift}, the retraining trigger" if drift is not None else
             f"No drift strength measured takes its ROC AUC below the floor of {floor}")
    return [{"issue": issue, "evidence": f"`{spec['file']}`", "tracking": spec["tracking"]}]


# What known_issues.yaml may hold under `measured`, and the fields of each open issue.
MEASURED = {"slices": {"metric": str, "floor": (int, float), "min_rows": int, "tracking": str},
            "ablation": {"file": str, "tracking": str},
            "feature_policy": {"file": str, "tracking": str},
            "staleness": {"file": str, "tracking": str}}
OPEN_ISSUE = {"issue": str, "since": (str, datetime.date), "tracking": str}


def known_issues(project: Path, measured: dict | None) -> list[dict] | None:
    """The rows of the card's Known issues section, each an issue, its evidence and where it
    is tracked: measured ones from the results the project's known_issues.yaml names, with
    its limits, then the open ones it lists. None when the project has no such file."""
    path = project / KNOWN_ISSUES
    if not path.is_file():
        return None
    where = f"known issues file {path}"
    spec = load_yaml(path, "known issues file") or {}
    if not isinstance(spec, dict) or set(spec) - {"measured", "open"}:
        raise InputError(f"{where} may hold only `measured` and `open`")
    parts, listed = spec.get("measured") or {}, spec.get("open") or []
    if not isinstance(parts, dict) or set(parts) - set(MEASURED):
        raise InputError(f"{where}: `measured` may hold only {', '.join(MEASURED)}")
    if not isinstance(listed, list):
        raise InputError(f"{where}: `open` must be a list of issues")
    parts = {kind: checked(value, MEASURED[kind], f"{where}: measured.{kind}")
             for kind, value in parts.items()}
    rows = []
    if "slices" in parts and measured is not None:
        rows += slice_issues(measured, parts["slices"])
    if "ablation" in parts:
        rows += ablation_issues(project, parts["ablation"])
    if "feature_policy" in parts:
        rows += policy_issues(project, parts["feature_policy"])
    if "staleness" in parts:
        rows += staleness_issues(project, parts["staleness"])
    for number, entry in enumerate(listed, 1):
        issue = checked(entry, OPEN_ISSUE, f"{where}: open issue {number}")
        rows.append({"issue": issue["issue"], "evidence": f"not measured; open since "
                     f"{issue['since']}", "tracking": issue["tracking"]})
    return rows


def service_target(project: Path, service: str | None) -> str | None:
    """The BentoML service to describe: --service, else the `service:` of bentofile.yaml."""
    if service:
        return service
    bentofile = project / "bentofile.yaml"
    if bentofile.is_file():
        return (load_yaml(bentofile, "bento build file") or {}).get("service")
    return None


def describe_service(project: Path, target: str) -> dict:
    """Import the service in a child process (see handbook.bentoml_service) and read back its
    OpenAPI spec and models."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "service.json"
        path = os.pathsep.join(filter(None, [str(HANDBOOK_ROOT), os.environ.get("PYTHONPATH")]))
        result = subprocess.run(
            [sys.executable, "-m", "handbook.bentoml_service", target, str(out)],
            cwd=project, env={**os.environ, "PYTHONPATH": path},
            capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no error output"])[-1]
            raise InputError(f"cannot load the service {target} in {project}: {last}")
        return json.loads(out.read_text())


def model_facts(model: dict) -> dict:
    metadata = model["metadata"]
    lineage = metadata.get("lineage") or {}
    python = lineage.get("python")
    return {
        "tag": f"{model['name']}:{model['version']}",
        "name": model["name"],
        "owner": model["labels"].get("owner"),
        "decision_threshold": metadata.get("decision_threshold"),
        "artifact": metadata.get("artifact"),
        "params": lineage.get("params"),
        "data": lineage.get("data"),
        "code_sha256": lineage.get("code_sha256"),
        "libraries": lineage.get("libraries"),
        # Major.minor only: the patch release differs between machines and says little.
        "python": ".".join(str(python).split(".")[:2]) if python else None,
    }


def api_facts(spec: dict) -> dict:
    """Endpoints with their input and output fields, and the infrastructure endpoints."""
    schemas = spec.get("components", {}).get("schemas", {})

    def resolve(schema: dict) -> dict:
        while "$ref" in schema:
            schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return schema

    def kind(prop: dict) -> str:
        if "$ref" in prop:
            return prop["$ref"].rsplit("/", 1)[-1]
        if "enum" in prop:
            return "one of " + ", ".join(f"`{value}`" for value in prop["enum"])
        if "anyOf" in prop:
            return " or ".join(kind(option) for option in prop["anyOf"])
        if prop.get("type") == "array":
            text, low, high = f"list of {kind(prop.get('items', {}))}", "minItems", "maxItems"
        else:
            text, low, high = prop.get("type", "any"), "minimum", "maximum"
        limits = [f"at least {prop[low]}" if low in prop else "",
                  f"above {prop['exclusiveMinimum']}" if "exclusiveMinimum" in prop else "",
                  f"at most {prop[high]}" if high in prop else "",
                  f"below {prop['exclusiveMaximum']}" if "exclusiveMaximum" in prop else ""]
        limits = [limit for limit in limits if limit]
        return f"{text}, {' and '.join(limits)}" if limits else text

    def fields(schema: dict) -> list[dict]:
        schema = resolve(schema)
        if "properties" not in schema:
            return [{"name": "(body)", "type": kind(schema), "required": True,
                     "description": schema.get("description", "")}] if schema else []
        required = set(schema.get("required", []))
        return [{"name": name, "type": kind(prop), "required": name in required,
                 "description": prop.get("description", "")}
                for name, prop in schema["properties"].items()]

    def json_schema(part: dict) -> dict:
        return part.get("content", {}).get("application/json", {}).get("schema", {})

    endpoints, infrastructure = [], []
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if "Infrastructure" in operation.get("tags", []):  # BentoML's health and metrics
                infrastructure.append(f"{method.upper()} {path}")
                continue
            endpoints.append({
                "method": method.upper(), "path": path,
                "inputs": fields(json_schema(operation.get("requestBody", {}))),
                "outputs": fields(json_schema(operation.get("responses", {}).get("200", {}))),
            })
    return {"endpoints": endpoints, "infrastructure": infrastructure}


def collect(project: Path, metrics: Path | None = None, alerts: list[Path] | None = None,
            service: str | None = None) -> dict:
    """Everything the card template needs; a part that is not available is None. Links are
    relative to the project folder, where the card belongs."""
    project = Path(project)
    if not project.is_dir():
        raise InputError(f"project folder {project} does not exist")
    if metrics is None and (project / "metrics.json").is_file():
        metrics = project / "metrics.json"
    measured = load_json(metrics, "metrics file") if metrics else None
    metrics_rows = metrics_table(measured) if measured is not None else None
    # The files first: a bad one should fail before the slow import of the service.
    alert_files = find_alert_files(project) if alerts is None else alerts
    alert_list = [alert for path in alert_files for alert in load_alerts(path)]
    issues = known_issues(project, measured)
    target = service_target(project, service)
    described = describe_service(project, target) if target else None
    stored = described["models"][0] if described and described["models"] else None
    model = model_facts(stored) if stored else None
    recorded = stored["metadata"].get("metrics") if stored else None
    if measured is not None and recorded is not None and recorded != measured:
        raise InputError(f"{metrics} does not hold the metrics recorded with {model['tag']}, "
                         "the model the service loads: train again, or pass the matching file")
    return {
        "metrics": metrics_rows,
        "model": model,
        "api": api_facts(described["openapi"]) if described else None,
        "alerts": alert_list or None,
        "runbook": RUNBOOK if (project / RUNBOOK).is_file() else None,
        "known_issues": issues,
    }
