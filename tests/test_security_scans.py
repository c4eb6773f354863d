"""Security scans: bandit finds nothing of high severity in the examples; the flagship has an SBOM.

Bandit scans every example including its tests: the tests run on developers' machines and CI
runners that hold credentials, and readers copy them with the example. The gate is on high
severity only; pytest's plain `assert`s (B101) and the tests' subprocess calls are low.
"""

import json
import re
import subprocess
from collections import Counter

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from conftest import BIN, ROOT

FLAGSHIP = ROOT / "examples" / "credit-risk"
# A virtual environment made by following an example's README inside the repository would
# otherwise be scanned too (third-party code, and slow).
EXCLUDED = "*/.venv/*,*/.pytest_cache/*,*/__pycache__/*"


def test_bandit_finds_no_high_severity_issue_in_the_examples():
    result = subprocess.run(
        [BIN / "bandit", "--recursive", "examples", "--exclude", EXCLUDED,
         "--format", "json", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr  # 1 means "found something"
    report = json.loads(result.stdout)
    assert report["errors"] == [], report["errors"]

    findings = report["results"]
    by_severity = Counter(f["issue_severity"] for f in findings)
    outside_tests = Counter(f["issue_severity"] for f in findings if "/tests/" not in f["filename"])
    by_test = Counter(f"{f['test_id']} {f['test_name']}" for f in findings)
    print(f"bandit over examples/: {dict(by_severity)} ({dict(outside_tests)} outside tests/), "
          f"{report['metrics']['_totals']['loc']} lines; by check: {dict(by_test.most_common())}")

    high = [f"{f['filename']}:{f['line_number']} {f['test_id']} {f['issue_text']}"
            for f in findings if f["issue_severity"] == "HIGH"]
    assert high == []


def pinned(requirements):
    """{name: version} of every `name==version` line of a pip requirements file."""
    lines = requirements.read_text().splitlines()
    pins = (re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line) for line in lines)
    return {m[1].lower().replace("_", "-"): m[2] for m in pins if m}


def test_sbom_of_the_flagship_service_validates_and_lists_every_pinned_package(tmp_path):
    """CycloneDX JSON from the requirements.txt the bento (and so the image) installs."""
    sbom = tmp_path / "credit-risk.cdx.json"
    result = subprocess.run(
        [BIN / "cyclonedx-py", "requirements", FLAGSHIP / "requirements.txt",
         "--spec-version", "1.6", "--output-format", "JSON", "--output-reproducible",
         "--output-file", sbom],
        cwd=FLAGSHIP, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr

    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.read_text())
    assert errors is None, str(errors)

    bom = json.loads(sbom.read_text())
    components = {c["name"].lower(): c for c in bom["components"]}
    expected = pinned(FLAGSHIP / "requirements.txt")
    print(f"SBOM: {len(components)} components, CycloneDX {bom['specVersion']}")
    assert {name: c["version"] for name, c in components.items()} == expected
    for name in ["bentoml", "scikit-learn", "skops", "pandas"]:
        assert components[name]["purl"] == f"pkg:pypi/{name}@{expected[name]}"
