"""Model-card and runbook templates: they render, keep what people wrote, and the checkers
catch what is missing. The flagship's committed card and runbook are complete and fresh."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from huggingface_hub import ModelCard

from conftest import ROOT

sys.path.insert(0, str(ROOT))  # the handbook package lives at the repository root
from handbook import alerts, card, facts, runbook  # noqa: E402
from handbook.markdown import PLACEHOLDER, sections  # noqa: E402

EXAMPLE = ROOT / "examples" / "credit-risk"
CARD = EXAMPLE / "MODEL_CARD.md"
RUNBOOK = EXAMPLE / "RUNBOOK.md"
# What the freshness test prints, and the documentation chapter shows, to bring the card up
# to date. A fresh model store, so that `credit_risk:latest` is the model just trained.
REGENERATE = """export BENTOML_HOME=$(mktemp -d)
(cd examples/credit-risk && python train.py)
python -m handbook card render examples/credit-risk"""
DOCUMENTATION_PAGE = ROOT / "docs" / "practices" / "documentation.md"

MEASURED = {"overall": {"rows": 400, "roc_auc": 0.81, "brier": 0.14},
            "by_region": {"north": {"rows": 300, "roc_auc": 0.83, "brier": 0.13},
                          "south": {"rows": 100, "roc_auc": 0.77, "brier": 0.16}}}
RULE = {"alert": "ToyErrors", "expr": "sum(rate(errors_total[5m])) > 0.1", "for": "5m",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "Toy service fails", "runbook_url": "RUNBOOK.md#toyerrors"}}
FACTS = {
    "metrics": facts.metrics_table(MEASURED),
    "model": {"tag": "toy:1", "name": "toy", "owner": "toy-team", "decision_threshold": 0.5,
              "artifact": {"file": "model.skops", "format": "skops", "sha256": "a" * 64},
              "params": {"max_depth": 3},
              "data": {"rows": 2000, "seed": 0, "sha256": "d" * 64},
              "code_sha256": "b" * 64, "libraries": {"scikit-learn": "1.5.0"},
              "python": "3.11"},
    "api": {"endpoints": [{"method": "POST", "path": "/predict",
                           "inputs": [{"name": "x", "type": "number", "required": True,
                                       "description": "a | b"}],
                           "outputs": [{"name": "y", "type": "number", "required": True,
                                        "description": ""}]}],
            "infrastructure": ["GET /readyz"]},
    "alerts": [alerts.describe(RULE)],
    "runbook": "RUNBOOK.md",
    "known_issues": [{"issue": "Slow | on Mondays", "evidence": "not measured; open since "
                      "2026-01-31", "tracking": "the toy tracker"}],
}


def filled_in(draft: str) -> str:
    """A draft with every placeholder answered, as a model owner would."""
    return (draft.replace(f"'{PLACEHOLDER}'", "tabular-classification")
            .replace(PLACEHOLDER, "Written by the owner on 2026-01-31."))


def complete_card() -> str:
    return card.render(FACTS, filled_in(card.render(FACTS)))


def handbook(*args: str, **run_args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handbook", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, **run_args)


def test_a_first_render_parses_and_asks_for_every_written_section():
    draft = card.render(FACTS)
    parsed = ModelCard(draft)  # the huggingface_hub parser, offline
    assert parsed.data.model_name == "toy"
    assert {(r.metric_type, r.metric_value) for r in parsed.data.eval_results} == {
        ("roc_auc", 0.81), ("brier", 0.14)}
    problems = card.check(draft)
    asked = {problem.split(":")[0] for problem in problems if "still" in problem}
    assert asked == {"front matter", "Model details", "Intended use", "Out-of-scope uses",
                     "Factors", "Metrics", "Evaluation data", "Training data",
                     "Quantitative analyses", "Ethical considerations",
                     "Caveats and recommendations", "Last reviewed"}
    assert "<!--" in dict((s.title, s.body) for s in sections(draft))["Intended use"]


def test_every_required_section_is_a_static_template_heading():
    headings = card.template_headings()
    assert set(card.REQUIRED_SECTIONS) <= headings
    rendered = {s.title for s in sections(card.render(FACTS)) if s.level > 1}
    assert rendered == {title for title in headings if not title.startswith("Model card")}


def test_a_filled_card_is_complete_and_its_numbers_check():
    complete = complete_card()
    assert card.check(complete, MEASURED) == []
    assert "| region: south | 100 | 0.77 | 0.16 |" in complete
    assert "a \\| b" in complete, "a | inside a table cell must be escaped"
    assert ("| Slow \\| on Mondays | not measured; open since 2026-01-31 | the toy tracker |"
            in complete)


def test_known_issues_are_required_and_come_only_from_the_pipeline():
    """Without known-issue facts the section is a placeholder the checker names; an empty list
    says that nothing was found; text written into the section does not survive a render."""
    without = card.render({**FACTS, "known_issues": None}, complete_card())
    assert card.check(without) == [f"Known issues: still {PLACEHOLDER}"]
    removed = re.sub(r"### Known issues\n.*?(?=## Deployment)", "", complete_card(), flags=re.S)
    assert card.check(removed) == ["Known issues: section missing"]
    none_found = card.render({**FACTS, "known_issues": []}, complete_card())
    assert card.check(none_found) == []
    assert "lists no open issue, and no measured result it names crosses its limits" \
        in none_found
    typed = complete_card().replace("| the toy tracker |\n", "| the toy tracker |\n"
                                    "| Typed by hand | - | - |\n", 1)
    assert "Typed by hand" in typed and "Typed by hand" not in card.render(FACTS, typed)


def test_a_render_keeps_written_text_and_added_headings_and_updates_numbers():
    written = complete_card().replace(
        "## Caveats and recommendations\n\n", "## Caveats and recommendations\n\n"
        "#### Known issue\n\nSlow on Mondays.\n\n", 1)
    changed = {**FACTS, "metrics": facts.metrics_table(
        {**MEASURED, "overall": {"rows": 400, "roc_auc": 0.79, "brier": 0.15}})}
    again = card.render(changed, written)
    assert "#### Known issue\n\nSlow on Mondays." in again
    assert "| overall | 400 | 0.79 | 0.15 |" in again
    assert card.check(again) == []
    assert card.render(changed, again) == again, "rendering twice changes nothing"


def test_the_checker_names_each_gap_in_a_half_filled_card():
    text = complete_card()
    text = re.sub(r"## Factors\n.*?(?=## Metrics)", "", text, flags=re.S)
    text = text.replace("| overall | 400 | 0.81 |", "| overall | 400 | 0.85 |")
    text = re.sub(r"(## Ethical considerations\n\n<!--.*?-->\n).*?\n", rf"\1{PLACEHOLDER}\n",
                  text, flags=re.S)
    assert card.check(text, MEASURED) == [
        "Factors: section missing",
        f"Ethical considerations: still {PLACEHOLDER}",
        "Quantitative analyses: roc_auc for overall is 0.85 in the card, 0.81 measured",
    ]


def test_runbook_draft_has_each_alert_and_fails_until_filled():
    draft = runbook.render(FACTS["alerts"], "toy")
    assert "## ToyErrors" in draft and "```promql\nsum(rate(errors_total[5m]))\n```" in draft
    problems = runbook.check(draft, FACTS["alerts"])
    assert "ToyErrors > Impact: still [More Information Needed]" in problems
    assert "Owners: still [More Information Needed]" in problems
    assert runbook.check(filled_in(draft), FACTS["alerts"]) == []


def test_runbook_check_finds_missing_extra_and_malformed_sections():
    text = filled_in(runbook.render(FACTS["alerts"], "toy"))
    text = text.replace("## ToyErrors", "## ToyErrorz").replace("### Impact", "### Effect")
    other = alerts.describe({**RULE, "alert": "ToyDown", "annotations": {}})
    assert runbook.check(text, FACTS["alerts"] + [other]) == [
        "ToyErrors: alert has no section (## ToyErrors)",
        "ToyDown: alert has no section (## ToyDown)",
        "ToyDown: alert has no runbook_url annotation",
        "ToyErrorz: section for an alert the rules do not define",
        "ToyErrorz: needs the headings Meaning, Impact, Diagnosis, Mitigation, Escalation, "
        "Rollback in this order (found: Meaning, Diagnosis, Mitigation, Escalation, Rollback)",
    ]


def test_each_template_page_shows_the_template_and_links_its_download():
    for name in ["model-card", "runbook"]:
        page = (ROOT / "docs" / "templates" / f"{name}.md").read_text()
        assert f'--8<-- "handbook/templates/{name}.md.jinja"' in page
        assert f"]({name}.md.jinja)" in page


def test_the_built_site_offers_each_template_for_download(built_site):
    for name in ["model-card", "runbook"]:
        template = f"{name}.md.jinja"
        published = built_site / "templates" / template
        assert published.read_text() == (ROOT / "handbook" / "templates" / template).read_text()
        page = (built_site / "templates" / name / "index.html").read_text()
        assert f'href="../{template}"' in page and f'download="{template}"' in page
        # A ``` inside an included file closes a shorter fence early, and the rest of the file
        # turns into headings of the page: only the page's own headings may be headings.
        own = sections((ROOT / "docs" / "templates" / f"{name}.md").read_text())
        assert len(re.findall(r"<h[1-6][ >]", page)) == len(own)


def test_card_commands_on_good_and_bad_input(tmp_path):
    good, metrics = tmp_path / "MODEL_CARD.md", tmp_path / "metrics.json"
    good.write_text(complete_card())
    metrics.write_text(json.dumps(MEASURED))
    result = handbook("card", "check", good, "--metrics", metrics)
    assert (result.returncode, result.stdout.strip()) == (
        0, f"{good}: complete, and its numbers match {metrics}")

    half = tmp_path / "half.md"
    half.write_text(card.render(FACTS))
    result = handbook("card", "check", half)
    assert result.returncode == 1
    assert f"  - Intended use: still {PLACEHOLDER}" in result.stdout.splitlines()

    broken_index = tmp_path / "broken-index.md"
    broken_index.write_text("---\nmodel-index:\n- name: toy\n  results:\n  - metrics: []\n---\n")
    result = handbook("card", "check", broken_index)
    assert result.returncode == 1 and "huggingface_hub cannot parse it" in result.stdout

    bad_yaml = tmp_path / "bad-yaml.md"
    bad_yaml.write_text("---\nmodel-index: [unclosed\n---\n# Card\n")
    for bad, message in [(tmp_path / "missing.md", "does not exist"),
                         (bad_yaml, "front matter is not valid YAML at line 2")]:
        result = handbook("card", "check", bad)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_runbook_commands_on_good_and_bad_input(tmp_path):
    rules = tmp_path / "alerts.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "toy", "rules": [RULE]}]}))
    draft = tmp_path / "RUNBOOK.md"
    assert handbook("runbook", "render", rules, "--out", draft).returncode == 0
    result = handbook("runbook", "check", draft)  # finds alerts.yml beside the runbook
    assert result.returncode == 1 and "ToyErrors > Meaning" not in result.stdout
    assert "  - ToyErrors > Impact: still [More Information Needed]" in result.stdout

    again = handbook("runbook", "render", rules, "--out", draft)
    assert again.returncode == 2 and "exists" in again.stderr

    rules.write_text("groups:\n  - name: toy\n   rules: []\n")
    result = handbook("runbook", "check", draft, "--alerts", rules)
    assert result.returncode == 2 and "not valid YAML at line 3" in result.stderr
    assert "Traceback" not in result.stderr


def test_flagship_runbook_is_complete():
    result = handbook("runbook", "check", RUNBOOK)
    assert result.returncode == 0, result.stdout


def test_the_documentation_page_shows_the_regenerate_command():
    assert REGENERATE in DOCUMENTATION_PAGE.read_text()


def test_staleness_ignores_only_the_artifact_hash():
    complete = complete_card()
    new_artifact = complete.replace("a" * 64, "c" * 64)
    assert new_artifact != complete and card.staleness(complete, new_artifact) == ""
    new_data = complete.replace("| seed | `0` |", "| seed | `1` |")
    diff = card.staleness(complete, new_data)
    assert "-| seed | `0` |" in diff and "+| seed | `1` |" in diff
    assert card.staleness(complete, complete.replace("d" * 64, "e" * 64)), \
        "the data's sha256 is the same in every run: a change must count"


@pytest.fixture(scope="module")
def fresh_pipeline(tmp_path_factory):
    """The flagship trained from scratch in a throwaway model store: its metrics file, and
    the environment in which `credit_risk:latest` is that model."""
    folder = tmp_path_factory.mktemp("pipeline")
    env = {**os.environ, "BENTOML_HOME": str(folder / "bentoml"), "OMP_NUM_THREADS": "1",
           "CREDIT_RISK_STATE_DIR": str(folder / "state")}
    env.pop("CREDIT_RISK_MODEL", None)
    trained = subprocess.run([sys.executable, "train.py", "--metrics", folder / "metrics.json"],
                             cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-3000:]
    return folder / "metrics.json", env


def test_flagship_card_is_complete_and_matches_the_measured_metrics(fresh_pipeline):
    metrics, _ = fresh_pipeline
    result = handbook("card", "check", CARD, "--metrics", metrics)
    assert result.returncode == 0, f"{result.stdout}\nregenerate with:\n{REGENERATE}"


def test_flagship_card_is_what_the_pipeline_renders(fresh_pipeline):
    metrics, env = fresh_pipeline
    assert card.ARTIFACT_SHA256_ROW.search(CARD.read_text()), "the card must name the artifact"
    result = handbook("card", "render", EXAMPLE, "--metrics", metrics, "--check", env=env)
    assert result.returncode == 0, (f"{result.stderr[-2000:]}\n{result.stdout[:4000]}\n"
                                    f"MODEL_CARD.md is stale; regenerate with:\n{REGENERATE}")
    assert "fresh" in result.stdout


def test_render_refuses_metrics_of_another_model(fresh_pipeline, tmp_path):
    metrics, env = fresh_pipeline
    other = json.loads(metrics.read_text())
    other["overall"]["roc_auc"] += 0.01
    (tmp_path / "metrics.json").write_text(json.dumps(other))
    result = handbook("card", "render", EXAMPLE, "--metrics", tmp_path / "metrics.json",
                      "--out", tmp_path / "MODEL_CARD.md", env=env)
    assert result.returncode == 2 and "does not hold the metrics recorded with" in result.stderr
    assert not (tmp_path / "MODEL_CARD.md").exists()
