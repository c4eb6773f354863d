"""Prometheus alerting rules: find them in a project and describe each alert for a document."""

import re
from pathlib import Path

from handbook.inputs import InputError, load_yaml, project_files, read_text

# The comparison an alert expression ends with, e.g. "> 0.05" in "errors / total > 0.05".
COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*$")
ALERT_KEY = re.compile(r"^\s*-?\s*alert:", re.M)


def rules_in(document) -> list[dict] | None:
    """The alerting rules in a parsed YAML document (a Prometheus rule file, or the spec of a
    PrometheusRule resource), or None when the document is neither."""
    if isinstance(document, dict) and isinstance(document.get("spec"), dict):
        document = document["spec"]
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list):
        return None
    return [rule for group in groups if isinstance(group, dict)
            for rule in group.get("rules") or [] if isinstance(rule, dict) and "alert" in rule]


def describe(rule: dict) -> dict:
    """What a card or runbook says about one alert: name, condition, threshold, links."""
    expr = str(rule.get("expr", "")).strip()
    comparison = COMPARISON.search(expr)
    annotations = rule.get("annotations") or {}
    return {
        "name": str(rule["alert"]),
        "expr": expr,
        # The expression without its threshold: the value the alert compares, as a query.
        "query": expr[:comparison.start()].strip() if comparison else expr,
        "threshold": f"{comparison[1]} {comparison[2]}" if comparison else None,
        "for": str(rule.get("for", "0s")),
        "severity": (rule.get("labels") or {}).get("severity"),
        "summary": annotations.get("summary"),
        "runbook_url": annotations.get("runbook_url"),
    }


def load_alerts(path: Path) -> list[dict]:
    """The alerts of one rule file; InputError if it is malformed or holds no rule groups."""
    rules = rules_in(load_yaml(path, "alert rules"))
    if rules is None:
        raise InputError(f"alert rules {path} has no `groups:` of Prometheus rules")
    return [describe(rule) for rule in rules]


def find_alert_files(project: Path) -> list[Path]:
    """YAML files in the project that define alerts (alert rule unit tests do not count).
    A malformed candidate raises InputError naming it."""
    return [path for path in project_files(project, "*.yml", "*.yaml")
            if ALERT_KEY.search(read_text(path, "YAML file"))
            and rules_in(load_yaml(path, "alert rules")) is not None]
