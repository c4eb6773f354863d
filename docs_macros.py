"""mkdocs-macros module: the measured figures on the site, read from committed results files.

A figure typed into a page is true on the day it is typed. The pages that quote
measurements render them at build time instead, from files a command regenerates:

- `bench.<stem>`: `bench/results/<stem>.json` (`results`, `onnx`, `profile`, `batch`),
  written by `make bench`;
- `example.<stem>`: `examples/credit-risk/results/<stem>.json` (`staleness`, `tuning`,
  `offline_online`), written by the example's own commands (`python -m ops.staleness`, ...);
- `card`: the "Results by slice" table of `examples/credit-risk/MODEL_CARD.md`, written by
  `python train.py --metrics ...` then `python -m handbook card render` (a test fails when
  the committed card is stale).

`staleness_chart()` draws `example.staleness` as an inline SVG at build time, so the plot
cannot disagree with the file. One macro renders facts that are not measurements:
`chapter_tool_rows()`, the start page's table of the tools each practice chapter needs, from
the chapters' `opening` front matter (overrides/hooks.py renders the same data as each
chapter's opening box).

A page opts in with `render_macros: true` in its front matter (`render_by_default` is off:
the template pages show Jinja that must stay as it is) and writes, for example,
`{{ point("batching", 32).p99_ms | ms }}`. tests/test_figures.py fails on a measured figure
typed into a page.
"""

import json
import re
from pathlib import Path

from mkdocs.utils.meta import get_data

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "bench" / "results"
EXAMPLE_RESULTS = ROOT / "examples" / "credit-risk" / "results"
MODEL_CARD = ROOT / "examples" / "credit-risk" / "MODEL_CARD.md"
DOCS = ROOT / "docs"
# The tools with a column of their own in the start page's table, and those columns' headings.
TOOL_COLUMNS = {"podman": "podman", "nginx": "nginx", "prometheus": "Prometheus",
                "chromium": "browser"}


def load_results(folder: Path = RESULTS) -> dict:
    """Every results file in folder, by its name without `.json`."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(folder.glob("*.json"))}


def card_slices(card: Path = MODEL_CARD) -> dict:
    """The model card's results table: {slice: {metric: number}}."""
    section = card.read_text(encoding="utf-8").split("### Results by slice", 1)[1]
    table = re.search(r"^\|.*?(?=\n(?!\|))", section, re.M | re.S)[0]
    rows = [line.strip().strip("|").split("|") for line in table.splitlines()
            if not line.startswith("|---")]
    header = [cell.strip() for cell in rows[0]]
    return {cells[0].strip(): {name: float(value) for name, value in
                               zip(header[1:], cells[1:], strict=True)}
            for cells in rows[1:]}


def fmt(value: float, digits: int = 1) -> str:
    """A number with `digits` decimals and thousands separators: 1600 -> 1,600."""
    return f"{value:,.{digits}f}"


def ms(value: float) -> str:
    """Milliseconds as a reader wants them: 274.7 -> "275 ms", 4.395 -> "4.4 ms"."""
    return f"{value:,.0f} ms" if value >= 20 else f"{value:.1f} ms"


def practice_pages(nav: list) -> dict[str, str]:
    """{title: page} of the practice chapters, in the order of the mkdocs.yml nav."""
    section = next(item["Practices"] for item in nav if "Practices" in item)
    return {title: page for entry in section for title, page in entry.items()}


def opening(page: str) -> dict:
    """The `opening` front matter of a page (a path relative to docs/)."""
    return get_data((DOCS / page).read_text(encoding="utf-8"))[1].get("opening", {})


def tool_row(title: str, page: str) -> str:
    """The start page's table row for one chapter: the tools its notebook needs."""
    facts = opening(page)
    tools = facts["tools"]
    cells = ["" if tools else "yes", *("yes" if tool in tools else "" for tool in TOOL_COLUMNS)]
    others = ", ".join(f"`{tool}`" for tool in tools if tool not in TOOL_COLUMNS)
    also = "; ".join(filter(None, [others, facts.get("tools_note")]))
    return f"| [{title}]({page}) | {' | '.join(cells)} | {also} |"


# The batch chapter's cost table: an assumption, roughly an on-demand cloud vCPU. Change it
# here and the table follows.
PRICE_PER_CORE_HOUR = 0.04


def staleness_svg(staleness: dict) -> str:
    """ROC AUC against concept-drift strength, the gate's floor and the crossing, as SVG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text as text: a tenth of the size
    from matplotlib import pyplot

    points = staleness["points"]
    drift = [p["concept_drift"] for p in points]
    auc = [p["roc_auc"] for p in points]
    spread = [p["sd"] for p in points]
    figure, axes = pyplot.subplots(figsize=(6.4, 3.2))
    axes.errorbar(drift, auc, yerr=spread, marker="o", capsize=3, color="#1f4e9a",
                  label="ROC AUC on fresh applications (mean ± sd over seeds)")
    axes.axhline(staleness["floor"], color="#a31515", linestyle="--",
                 label=f"release gate's floor ({staleness['floor']})")
    if (crossing := staleness["retrain_at_concept_drift"]) is not None:
        axes.axvline(crossing, color="#555555", linestyle=":",
                     label=f"retraining trigger (drift {crossing})")
    axes.set_xlabel("concept drift strength (0: the training world)")
    axes.set_ylabel("ROC AUC")
    axes.legend(fontsize="small", loc="lower left")
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    pyplot.close(figure)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    title = (f"ROC AUC of model {staleness['model_version']} against concept drift strength; "
             f"it falls below the floor of {staleness['floor']} at drift {crossing}")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{title}" ', 1)


def define_env(env):
    results = load_results()
    env.variables["example"] = load_results(EXAMPLE_RESULTS)
    env.variables["bench"] = results
    env.variables["price_per_core_hour"] = PRICE_PER_CORE_HOUR
    env.variables["card"] = card_slices()

    @env.macro
    def point(server: str, concurrency) -> dict:
        """One measured point of `make bench`; concurrency "after_burst" is the c=1 rerun."""
        measured = results["results"]["servers"][server]
        if concurrency == "after_burst":
            return measured["after_burst"]
        return next(p for p in measured["points"] if p["concurrency"] == concurrency)

    @env.macro
    def points(server: str | None = None) -> list[dict]:
        """Every measured point (of one server, or of all), the after-burst reruns included."""
        servers = results["results"]["servers"]
        chosen = [servers[server]] if server else servers.values()
        return [p for s in chosen for p in [*s["points"], s["after_burst"]]]

    @env.macro
    def target(name: str) -> dict:
        """A target of `make bench` by its name: goal, measured, unit, met."""
        return next(t for t in results["results"]["targets"] if t["target"] == name)

    @env.macro
    def card_range(prefix: str, metric: str) -> tuple[float, float]:
        """Lowest and highest value of a metric over the card's slices named prefix...."""
        values = [row[metric] for name, row in card_slices().items()
                  if re.match(re.escape(prefix), name)]
        return min(values), max(values)

    @env.macro
    def chapter_tool_rows() -> str:
        """The start page's table rows of the practice chapters."""
        return "\n".join(tool_row(title, page)
                         for title, page in practice_pages(env.conf["nav"]).items())

    @env.macro
    def staleness_chart() -> str:
        """The staleness curve of examples/credit-risk/results/staleness.json, inline."""
        return staleness_svg(env.variables["example"]["staleness"])

    env.filter(fmt)
    env.filter(ms)
