"""The flagship's configuration reference: the README's table and the site's page are what
`credit_risk/settings.py` generates, so neither can drift from the code."""

import subprocess
import sys

from conftest import ROOT

EXAMPLE = ROOT / "examples" / "credit-risk"
START, END = "<!-- --8<-- [start:settings] -->\n", "<!-- --8<-- [end:settings] -->"


def generated() -> str:
    result = subprocess.run([sys.executable, "-m", "credit_risk.settings"], cwd=EXAMPLE,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def between_markers(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0]


def test_the_readme_table_is_the_generated_one():
    assert between_markers((EXAMPLE / "README.md").read_text()) == generated(), (
        "regenerate with: cd examples/credit-risk && python -m credit_risk.settings")


def test_the_site_page_includes_the_readme_table():
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert '--8<-- "examples/credit-risk/README.md:settings"' in page


def test_a_changed_default_fails_the_comparison(tmp_path):
    readme = (EXAMPLE / "README.md").read_text()
    planted = readme.replace("| `128` |", "| `256` |", 1)
    assert planted != readme
    assert between_markers(planted) != generated()
