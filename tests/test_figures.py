"""No measured figure is typed by hand (issue 14: every claim true).

A latency, a throughput, an error rate, a size, an AUC, a count or a duration in a page's
prose must be rendered at build time from a committed results file that a command
regenerates (`docs_macros.py` loads them; a page writes `{{ point("batching", 32).p99_ms | ms }}`).
A number with a unit that is not a measurement (a target, a standard, a setting's default, a
definition, a test's input) is listed in tests/figures_allowed.yaml with the page, the exact
text and the reason.

Scanned: every docs/**/*.md page except the generated notebook copies, outside fenced code,
snippet includes (`--8<--`), macro expressions, inline code, HTML comments and link targets.
"""

import re

import pytest
import yaml

from conftest import ROOT

DOCS = ROOT / "docs"
ALLOWED_FILE = ROOT / "tests" / "figures_allowed.yaml"

NUMBER = r"(?<![\w.,/-])(?:\d{1,3}(?:[, ]\d{3})+(?!\d)|\d+)(?:\.\d+)?"
RANGE = rf"{NUMBER}(?:\s*(?:%|ms|s)?\s*(?:to|–|-|and)\s*{NUMBER})?"
UNIT = (r"(?:%|ms|µs|us|s|seconds?|minutes?|hours?|MB|MiB|kB|KB|GB|GiB|bytes?|x|×|times"
        r"|σ|rows?/s|req/s|requests?(?:/s| per second| a second)?|rows?(?: per second)?"
        r"|findings?|packages?|cases|failures?|failed|errors?|calls?)")
COUNTED = r"(?:findings|packages|requests|rows|cases|failures|errors)\b"
WORD_NUMBER = (r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty"
               r"|thirty|forty|fifty|a hundred|hundreds of|half|a third|a quarter|two thirds)")
FIGURES = [
    re.compile(rf"{RANGE}\s?{UNIT}(?![\w/])"),                       # 250 ms, 10 %, 2–3.5 %
    re.compile(rf"(?<![\w.]){NUMBER}\s?[x×](?!\w)"),                # 5.8x
    re.compile(rf"{NUMBER}\s(?:(?!(?:to|of|and|or|each|per|a|an|the|in|at|for|on)\s)"
               rf"[a-z-]+\s){{1,2}}{COUNTED}"),                       # 428 low findings
    re.compile(r"(?:ROC AUC|AUC|accuracy|rate)(?: of| was| is)?\s+\d"
               r"(?:\.\d+)?(?:\s*(?:→|to|and)\s*\d(?:\.\d+)?)*"),  # ROC AUC 0.76
    re.compile(r"(?<![\w.])0\.\d+"),                               # 0.77, any fraction
    re.compile(rf"\b{WORD_NUMBER}\s+(?:times\b|of a (?:millisecond|second)"
               r"|(?:milli|micro)?seconds?\b|minutes?\b)", re.I),  # four times, five minutes
]

HTTP_STATUSES = re.compile(r"[1-5]\d\ds")  # "200s and 503s" are status codes, not seconds
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
MACRO = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
LINK_TARGET = re.compile(r"\]\([^)]*\)|\]\[[^\]]*\]|^\[[^\]]+\]:.*$", re.M)
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)


def pages() -> list[str]:
    return sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")
                  if not {"notebooks", "assets"} & set(path.relative_to(DOCS).parts))


def prose(text: str) -> str:
    """The page without what is not prose; lines keep their numbers."""
    blank = lambda match: re.sub(r"[^\n]", " ", match[0])  # noqa: E731
    text = FRONT_MATTER.sub(blank, text)
    lines, fence = [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match[1]
            lines.append("")
        elif fence is not None:
            if match and match[1][0] == fence[0] and len(match[1]) >= len(fence) \
                    and not line.strip()[len(match[1]):].strip():
                fence = None
            lines.append("")
        else:
            lines.append("" if line.lstrip().startswith("--8<--") else line)
    text = "\n".join(lines)
    for pattern in (MACRO, COMMENT, INLINE_CODE, LINK_TARGET):
        text = pattern.sub(blank, text)
    return text


def figures(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each number with a unit in the page's prose."""
    found, taken = [], []
    text = prose(text)
    for pattern in FIGURES:
        for match in pattern.finditer(text):
            span = range(*match.span())
            if any(set(span) & set(other) for other in taken):
                continue
            taken.append(span)
            if HTTP_STATUSES.fullmatch(match[0]):
                continue
            found.append((text.count("\n", 0, match.start()) + 1, " ".join(match[0].split())))
    return sorted(found)


def allowed() -> list[dict]:
    return yaml.safe_load(ALLOWED_FILE.read_text(encoding="utf-8")) or []


def unexplained(page: str, text: str, entries: list[dict]) -> list[str]:
    ok = {entry["text"] for entry in entries if entry["page"] == page}
    return [f"docs/{page}:{line}: {figure!r}" for line, figure in figures(text)
            if figure not in ok]


@pytest.mark.parametrize("page", pages())
def test_no_hand_typed_measured_figure(page):
    problems = unexplained(page, (DOCS / page).read_text(encoding="utf-8"), allowed())
    assert not problems, (
        "a measured figure typed by hand: render it from a results file (docs_macros.py), "
        "or, if it is not a measurement, list it in tests/figures_allowed.yaml with the "
        "reason:\n" + "\n".join(problems))


def test_every_allowed_figure_has_a_reason_and_is_still_on_its_page():
    texts = {page: [figure for _, figure in figures((DOCS / page).read_text(encoding="utf-8"))]
             for page in pages()}
    for entry in allowed():
        assert set(entry) == {"page", "text", "reason"}, entry
        assert len(entry["reason"].split()) >= 3, f"say why it is not a measurement: {entry}"
        assert not entry["reason"].lower().startswith(("measured", "measurement")), entry
        assert entry["text"] in texts.get(entry["page"], []), f"stale entry: {entry}"


def test_a_planted_measurement_fails(tmp_path):
    planted = ("Under load the p99 was 275 ms at 32 clients, 5.8x the baseline, with "
               "0.3 % errors, 550 kB on disk and a ROC AUC of 0.764; import took "
               "about four seconds.\n")
    problems = unexplained("planted.md", planted, allowed())
    assert {problem.split(": ", 1)[1] for problem in problems} == {
        "'275 ms'", "'5.8x'", "'0.3 %'", "'550 kB'", "'ROC AUC of 0.764'", "'four seconds'"}


def test_rendered_code_and_includes_are_not_prose():
    page = ("---\nrender_macros: true\n---\n"
            "The p99 was {{ point('batching', 32).p99_ms | ms }}.\n"
            "```bash\nsleep 5s  # 12 ms\n```\n"
            '--8<-- "bench/results/summary.md"\n'
            "Set `timeout: 10 s` and read [the SLO page](slo-250ms.md).\n")
    assert figures(page) == []
