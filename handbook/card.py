"""Render a model card from the pipeline's outputs, and check a card for what is missing.

The front matter is written and parsed by huggingface_hub (ModelCardData, ModelCard), so it
stays compatible with the Hub's model-card format; the body comes from a Jinja template.
"""

import difflib
import re

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from handbook.facts import metric_slices
from handbook.inputs import parse_yaml
from handbook.markdown import (
    PLACEHOLDER,
    Section,
    sections,
    tables,
    without_comments,
    written_text,
)
from handbook.rendering import template

TEMPLATE = "model-card.md.jinja"
# Every card needs these sections (Mitchell et al.'s, then the deployment facts).
REQUIRED_SECTIONS = [
    "Model details", "Intended use", "Out-of-scope uses", "Factors", "Metrics",
    "Evaluation data", "Training data", "Quantitative analyses", "Ethical considerations",
    "Caveats and recommendations", "Known issues", "Deployment", "Artifact", "Endpoints",
    "Input and output schema", "Monitoring thresholds", "Runbook", "Last reviewed",
]
RESULTS_SECTION = "Quantitative analyses"
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")
# The artifact's hash row. skops names an archive's members after object ids and zip stamps
# them with the time, so every training run writes a file with a new sha256 even when the
# model version (derived from data, parameters and code) is the same.
ARTIFACT_SHA256_ROW = re.compile(r"^\| sha256 \| `[0-9a-f]{64}` \|$", re.M)
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
DATASET_FIELDS = ["type", "name", "config", "split", "revision"]


def front_matter(facts: dict, previous: dict) -> str:
    """The YAML front matter: keys people added are kept; `model-index` is rebuilt from the
    overall metrics, keeping the task and dataset people described."""
    kept = {key: value for key, value in previous.items() if key != "model-index"}
    try:
        result = previous["model-index"][0]["results"][0]
    except (KeyError, IndexError, TypeError):
        result = {}
    task = result.get("task") or {"type": PLACEHOLDER, "name": PLACEHOLDER}
    dataset = result.get("dataset") or {"type": PLACEHOLDER, "name": PLACEHOLDER}
    overall = facts["metrics"]["overall"] if facts["metrics"] else {}
    results = [
        EvalResult(task_type=task.get("type"), task_name=task.get("name"),
                   **{f"dataset_{field}": dataset.get(field) for field in DATASET_FIELDS},
                   metric_type=name, metric_value=value)
        for name, value in overall.items() if name != "rows"
    ]
    model_name = facts["model"]["name"] if facts["model"] else PLACEHOLDER
    return ModelCardData(**kept, model_name=model_name, eval_results=results or None).to_yaml()


def template_headings() -> set[str]:
    """The headings the template writes (rendered with no facts at all)."""
    empty = {"metrics": None, "model": None, "api": None, "alerts": None, "runbook": None,
             "known_issues": None}
    text = template(TEMPLATE).render(card_data="", kept={}, placeholder=PLACEHOLDER, **empty)
    return {section.title for section in sections(text)}


def written_sections(previous: str) -> dict[str, str]:
    """What people wrote in an existing card, by heading: the text under a template heading,
    including any headings they added below it, without the template's guidance comments."""
    known = template_headings()
    found = sections(previous)
    written = {}
    for index, section in enumerate(found):
        if section.title not in known:
            continue
        parts = [section.body]
        for added in found[index + 1:]:
            if added.title in known:
                break
            parts += [f"{'#' * added.level} {added.title}", added.body]
        written[section.title] = written_text("\n\n".join(parts))
    return written


def front_matter_line(text: str, match: re.Match) -> int:
    """The line of the card where the YAML inside the front matter starts."""
    return text.count("\n", 0, match.start(2)) + 1


def previous_front_matter(previous: str) -> dict:
    match = REGEX_YAML_BLOCK.search(previous)
    data = parse_yaml(match.group(2), "the existing card's front matter",
                      front_matter_line(previous, match)) if match else None
    return data if isinstance(data, dict) else {}


# --8<-- [start:render]
def render(facts: dict, previous: str = "") -> str:
    """The card for `facts` (see handbook.facts.collect), keeping what people wrote in
    `previous`, the card as it is now."""
    text = template(TEMPLATE).render(
        card_data=front_matter(facts, previous_front_matter(previous)),
        kept=written_sections(previous), placeholder=PLACEHOLDER, **facts,
    )
    ModelCard(text)  # fails loudly if huggingface_hub could not read back what we wrote
    return text
# --8<-- [end:render]


def without_artifact_hash(text: str) -> str:
    """The card with the sha256 row of its Artifact section (only there) made neutral."""
    start = text.find("\n### Artifact\n")
    if start < 0:
        return text
    end = text.find("\n#", start + 1)
    end = len(text) if end < 0 else end
    return (text[:start] + ARTIFACT_SHA256_ROW.sub("| sha256 | (differs per training run) |",
                                                  text[start:end]) + text[end:])


def staleness(current: str, rendered: str, name: str = "MODEL_CARD.md") -> str:
    """What a render would change in the card, as a unified diff; empty when it is fresh.
    The artifact's sha256 is left out (see ARTIFACT_SHA256_ROW): the version is compared."""
    return "".join(difflib.unified_diff(
        without_artifact_hash(current).splitlines(True),
        without_artifact_hash(rendered).splitlines(True),
        f"{name} (as it is)", f"{name} (as rendered now)", n=1))


def same_number(shown: str, measured) -> bool:
    try:
        return float(shown.strip("` ")) == float(measured)
    except ValueError:
        return False


def check_numbers(card: ModelCard, results: Section | None, measured: dict) -> list[str]:
    """Every measured number must appear, unchanged, in the results table and front matter."""
    problems = []
    shown = {}
    for table in tables(results.content if results else ""):
        header = table[0]
        if header[0] == "slice":
            shown |= {(row[0], name): value for row in table[1:] for name, value in
                      zip(header[1:], row[1:], strict=False)}
    for label, values in metric_slices(measured):
        for name, value in values.items():
            if (label, name) not in shown:
                problems.append(f"{RESULTS_SECTION}: no {name} for {label} (measured {value})")
            elif not same_number(shown[label, name], value):
                problems.append(f"{RESULTS_SECTION}: {name} for {label} is "
                                f"{shown[label, name]} in the card, {value} measured")
    overall = dict(metric_slices(measured)).get("overall", {})
    for result in card.data.eval_results or []:
        if result.metric_type in overall and not same_number(
                str(result.metric_value), overall[result.metric_type]):
            problems.append(f"front matter: {result.metric_type} is {result.metric_value}, "
                            f"{overall[result.metric_type]} measured")
    return problems


def placeholder_paths(value, path: str = "") -> list[str]:
    """Where in parsed YAML a value is still the placeholder, e.g. model-index[0].results..."""
    if isinstance(value, dict):
        return [found for key, item in value.items()
                for found in placeholder_paths(item, f"{path}.{key}" if path else str(key))]
    if isinstance(value, list):
        return [found for index, item in enumerate(value)
                for found in placeholder_paths(item, f"{path}[{index}]")]
    return [path] if value == PLACEHOLDER else []


def check_front_matter(text: str) -> tuple[list[str], ModelCard | None]:
    match = REGEX_YAML_BLOCK.search(text)
    if not match:
        return ["front matter: missing (the card must start with a --- YAML block ---)"], None
    data = parse_yaml(match.group(2), "the card's front matter",  # malformed: InputError
                      front_matter_line(text, match))
    try:
        card = ModelCard(text)
    except ValueError as error:
        return [f"front matter: huggingface_hub cannot parse it: {error}"], None
    problems = [f"front matter: {path} is still {PLACEHOLDER}"
                for path in placeholder_paths(data)]
    if not card.data.eval_results:
        problems.append("front matter: no model-index results (task, dataset and metrics)")
    return problems, card


# --8<-- [start:check]
def check(text: str, measured: dict | None = None) -> list[str]:
    """What is missing or unfinished in a card; with `measured` (the metrics JSON), also
    every number that differs from it. An empty list means the card is complete."""
    problems, card = check_front_matter(text)
    found = sections(text)
    by_title = {section.title: section for section in found}
    for title in REQUIRED_SECTIONS:
        if title not in by_title:
            problems.append(f"{title}: section missing")
        elif not without_comments(by_title[title].content):
            problems.append(f"{title}: empty")
    problems += [f"{section.title}: still {PLACEHOLDER}" for section in found
                 if PLACEHOLDER in without_comments(section.body)]
    if "Artifact" in by_title and not SHA256.search(by_title["Artifact"].content):
        problems.append("Artifact: no sha256 of the model file")
    reviewed = by_title.get("Last reviewed")
    if reviewed and PLACEHOLDER not in reviewed.content and not DATE.search(reviewed.content):
        problems.append("Last reviewed: no date (YYYY-MM-DD)")
    if measured is not None and card is not None:
        problems += check_numbers(card, by_title.get(RESULTS_SECTION), measured)
    return problems
# --8<-- [end:check]
