"""Alerts: the rules are valid, their unit tests pass, and each one has a runbook section.

Pure file checks plus Prometheus's `promtool`; no model or server is needed.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

EXAMPLE = Path(__file__).resolve().parents[2]
ALERTS = EXAMPLE / "monitoring" / "alerts.yml"
ALERT_TESTS = EXAMPLE / "monitoring" / "alerts.test.yml"
RUNBOOK = EXAMPLE / "RUNBOOK.md"
RUNBOOK_URL = ("https://github.com/deployment-handbook/handbook/blob/main/"
               "examples/credit-risk/RUNBOOK.md")
SUBSECTIONS = ["Meaning", "Impact", "Diagnosis", "Mitigation", "Escalation", "Rollback"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def runbook_sections() -> dict[str, str]:
    """The runbook's level-2 sections about an alert (heading starts "CreditRisk"): name -> body."""
    sections, name, in_code = {}, None, False
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif line.startswith("## ") and not in_code:  # a `#` comment in code is no heading
            name = line.removeprefix("## ").strip()
            sections[name] = []
            continue
        if name is not None:
            sections[name].append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()
            if name.startswith("CreditRisk")}


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed (apt-get install prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return subprocess.run([binary, *args], cwd=EXAMPLE, capture_output=True, text=True,
                          timeout=120)


def test_rules_are_valid():
    result = promtool("check", "rules", "monitoring/alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    result = promtool("test", "rules", "monitoring/alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_runbook_promql_parses(tmp_path):
    queries = [body for lang, body in FENCE.findall(RUNBOOK.read_text()) if lang == "promql"]
    rules = [{"record": f"runbook:query_{i}", "expr": query} for i, query in enumerate(queries)]
    path = tmp_path / "runbook-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "runbook", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_section_and_back():
    names, sections = set(alerts()), set(runbook_sections())
    assert names - sections == set(), "alerts without a '## <AlertName>' section in RUNBOOK.md"
    assert sections - names == set(), "RUNBOOK.md sections for alerts that alerts.yml lacks"


def test_runbook_urls_point_at_the_alert_section():
    for name, rule in alerts().items():
        assert rule["annotations"]["runbook_url"] == f"{RUNBOOK_URL}#{name.lower()}", name


def test_runbook_sections_have_the_subsections_in_order():
    for name, body in runbook_sections().items():
        subsections = [s.strip() for s in re.findall(r"^### (.+)$", body, flags=re.M)]
        assert subsections == SUBSECTIONS, f"{name}: level-3 headings must be {SUBSECTIONS}"
        diagnosis = body.split("### Diagnosis\n", 1)[1].split("\n### ", 1)[0]
        assert "```promql\n" in diagnosis, f"{name}: no ```promql block in Diagnosis"


def test_every_alert_has_a_firing_and_a_silent_unit_test():
    fires, stays_silent = set(), set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        checks = case.get("alert_rule_test", [])
        fired = {check["alertname"] for check in checks if check.get("exp_alerts")}
        fires |= fired
        # Silent on healthy series: checked in a case where the alert never fires (an
        # empty check just before a `for:` window ends does not count).
        stays_silent |= {check["alertname"] for check in checks} - fired
    for name in alerts():
        assert name in fires, f"{name}: no unit test where it fires"
        assert name in stays_silent, f"{name}: no unit test on healthy series where it is silent"
