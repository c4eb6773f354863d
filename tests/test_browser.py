"""A reader's visit in a real browser: Playwright driving Debian's Chromium (never a download).

One browser serves every test here. Besides the reader's path (nav, notebook, search), every
page of the site is visited in the light and the dark scheme: no console error, no failed
request, nothing asked of another host, every Mermaid diagram drawn, every task list drawn
as checkboxes, and axe-core (vendored, injected into the page) finds no critical or serious
WCAG 2.1 A/AA violation.
"""

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT, nav_pages, require_tool

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
AXE = ROOT / "docs" / "assets" / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
COLOUR_RULES = ["color-contrast", "link-in-text-block"]
SCREENSHOTS = ROOT / "build" / "screenshots"
# Material draws a diagram into a *closed* shadow root; open it so the test can look inside.
OPEN_SHADOW_ROOTS = """
const attachShadow = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  return attachShadow.call(this, { ...init, mode: "open" });
};
"""


def page_urls(base: str) -> list[str]:
    """The URL of every page in the nav, under base (which ends with "/")."""
    urls = []
    for page in nav_pages():
        path = "" if page == "index.md" else page.rsplit(".", 1)[0] + "/"
        urls.append(base + path)
    return urls


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool(os.environ.get("CHROMIUM", "chromium"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def watched_page(context, base: str):
    """A page that records console errors, failed requests and requests to other hosts."""
    page = context.new_page()
    page.problems = []
    own_host = urlsplit(base).netloc

    def request(request):
        parts = urlsplit(request.url)
        if parts.scheme not in ("data", "blob", "about") and parts.netloc != own_host:
            page.problems.append(f"request to another host: {request.url}")

    def response(response):
        if response.status >= 400:
            page.problems.append(f"{response.status} for {response.url}")

    page.on("console", lambda m: m.type == "error" and page.problems.append(
        f"console error: {m.text}"))
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    # ERR_ABORTED is the browser cancelling what a page still loads when the reader moves on
    # (the search index, say); a missing file is a 404 above, a dead server another error.
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED" and page.problems.append(
        f"failed: {r.url}: {r.failure}"))
    page.on("response", response)
    context.on("request", request)  # the page's requests and its workers' (the search index)
    return page


@pytest.fixture(scope="module")
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    page.on("requestfailed", lambda r: page.console_errors.append(f"{r.url}: {r.failure}"))
    yield page
    context.close()


def search(page, query, deadline_s=30):
    """Type a query the way a reader does, retyping until the search index has loaded.

    Material builds its search index in a web worker after the page loads; a query typed
    before that answers "No matching documents" and is not rerun when the index is ready.
    """
    results = page.locator(".md-search-result__item")
    deadline = time.monotonic() + deadline_s
    while True:
        page.keyboard.press("Escape")
        page.keyboard.press("/")  # Material's shortcut focuses the search box
        page.keyboard.press("Control+A")
        page.keyboard.type(query, delay=30)
        try:
            expect(results.first).to_be_visible(timeout=2_000)
            return results
        except AssertionError:
            if time.monotonic() > deadline:
                raise


@pytest.mark.timeout(120)
def test_reader_follows_nav_to_executed_notebook_and_searches(page, site_url):
    page.goto(f"{site_url}/")
    expect(page.locator("h1")).to_contain_text("Deployment Handbook")

    page.get_by_role("navigation").get_by_role("link", name="Quickstart").first.click()
    expect(page).to_have_url(f"{site_url}/notebooks/quickstart/")
    outputs = page.locator(".jp-OutputArea-output")
    expect(outputs.first).to_be_visible()
    expect(page.locator(".jp-OutputArea-output img").first).to_be_visible()
    expect(page.get_by_text("model_version").first).to_be_visible()

    results = search(page, "lineage")
    expect(results.first).to_contain_text("lineage")

    assert page.console_errors == []


def diagram_problems(page) -> list[str]:
    """Wait until Material has drawn every diagram; say what is not an SVG or shows an error."""
    if page.locator("pre.mermaid, div.mermaid").count() == 0:
        return []
    try:  # Material swaps each <pre class="mermaid"> for a <div class="mermaid"> when drawn
        page.wait_for_function(
            "document.querySelectorAll('pre.mermaid').length === 0", timeout=20_000)
    except Exception:  # noqa: BLE001 - reported below, with the page's state
        pass
    return page.evaluate("""() => {
      const problems = [];
      document.querySelectorAll("pre.mermaid").forEach(
        (pre) => problems.push("diagram not drawn: " + pre.textContent.slice(0, 60)));
      document.querySelectorAll("div.mermaid").forEach((div) => {
        const svg = div.shadowRoot && div.shadowRoot.querySelector("svg");
        if (!svg) problems.push("diagram without an SVG");
        else if (/Syntax error|Parse error|error in text/i.test(svg.textContent))
          problems.push("Mermaid error: " + svg.textContent.slice(0, 120));
      });
      if (/Syntax error in text/.test(document.body.innerText))
        problems.push("Mermaid error text on the page");
      return problems;
    }""")


def task_list_problems(page) -> list[str]:
    """Every task list item is drawn as a checkbox; no item still shows "[ ]" or "[x]"."""
    return page.evaluate(r"""() => {
      const problems = [];
      document.querySelectorAll("li.task-list-item").forEach((li) => {
        if (!li.querySelector("label.task-list-control input[type=checkbox]") ||
            !li.querySelector(".task-list-indicator"))
          problems.push("task list item without a checkbox: " + li.textContent.slice(0, 60));
      });
      document.querySelectorAll("article li").forEach((li) => {
        if (/^\s*\[[ xX]\]\s/.test(li.textContent))
          problems.push("unrendered task list item: " + li.textContent.slice(0, 60));
      });
      return problems;
    }""")


def start_axe(page, colour_only: bool = False) -> None:
    """Start axe-core in the page without waiting, so two pages can be checked at once.

    colour_only: the rules whose outcome depends on colours. The light and dark schemes
    differ only in CSS colours, so the dark page needs no more than these.
    """
    page.add_script_tag(path=AXE)
    run_only = ({"type": "rule", "values": COLOUR_RULES} if colour_only
                else {"type": "tag", "values": AXE_TAGS})
    page.evaluate("""(runOnly) => { window.axeResults = axe.run(document, {
        runOnly, resultTypes: ["violations"]}); }""", run_only)


def axe_violations(page) -> list[str]:
    results = page.evaluate("window.axeResults")  # waits for the run start_axe began
    return [f"axe {v['impact']} {v['id']}: {v['help']} "
            f"({len(v['nodes'])}x, e.g. {v['nodes'][0]['target']})"
            for v in results["violations"] if v["impact"] in ("critical", "serious")]


def image_problems(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll("img")]
      .filter((img) => !img.hasAttribute("alt"))
      .map((img) => "image without alt text: " + img.src.slice(0, 80))""")


@pytest.mark.timeout(240)
def test_every_page_is_clean_and_accessible(browser, compressed_site_url):
    # One page per colour scheme, visiting the same URL side by side: axe runs in both at
    # once (each page has its own renderer process), which halves the time on two cores.
    pages = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme,
                                      viewport={"width": 1280, "height": 900})
        context.add_init_script(OPEN_SHADOW_ROOTS)
        pages[scheme] = watched_page(context, compressed_site_url)
    report = {}
    started = time.monotonic()
    urls = page_urls(compressed_site_url)
    try:
        for url in urls:
            for scheme, page in pages.items():
                page.problems.clear()
                page.goto(url, wait_until="load")
                expected = "slate" if scheme == "dark" else "default"
                assert page.evaluate("document.body.dataset.mdColorScheme") == expected
            for scheme, page in pages.items():
                page.checks = [*diagram_problems(page), *task_list_problems(page),
                               *image_problems(page)]
                start_axe(page, colour_only=scheme == "dark")
            for scheme, page in pages.items():
                problems = [*page.checks, *axe_violations(page), *page.problems]
                if problems:
                    report[f"{url.removeprefix(compressed_site_url) or '/'} ({scheme})"] = problems
    finally:
        for page in pages.values():
            page.context.close()
    print(f"\n{len(urls)} pages, light and dark, in {time.monotonic() - started:.0f} s")
    assert report == {}, "\n".join(f"{url}: {problem}" for url, problems in report.items()
                                    for problem in problems)


@pytest.mark.timeout(120)
def test_site_works_under_a_sub_path_and_compressed(browser, compressed_site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(OPEN_SHADOW_ROOTS)
    page = watched_page(context, compressed_site_url)
    responses = []
    page.on("response", lambda response: responses.append(response))
    try:
        page.goto(compressed_site_url, wait_until="networkidle")
        weight = {"transferred": 0, "uncompressed": 0, "gzip": 0}
        for response in responses:
            weight["transferred"] += response.request.sizes()["responseBodySize"]
            weight["uncompressed"] += len(response.body())
            weight["gzip"] += response.headers.get("content-encoding") == "gzip"
        print(f"\nhome page: {len(responses)} responses, {weight['transferred'] / 1024:.0f} KiB "
              f"transferred, {weight['uncompressed'] / 1024:.0f} KiB uncompressed")
        assert weight["gzip"] > 0 and weight["transferred"] < weight["uncompressed"]
        # Material's stylesheet applied: the header has its colour, the nav its links.
        expect(page.locator(".md-header")).not_to_have_css("background-color", "rgba(0, 0, 0, 0)")

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "home.png", animations="disabled")

        nav = page.get_by_role("navigation", name="Navigation")
        nav.get_by_role("link", name="Start here").first.click()
        expect(page).to_have_url(f"{compressed_site_url}start/")
        page.wait_for_load_state("load")  # a click before that would abort its requests
        nav.get_by_role("link", name="Monitoring").first.click()
        expect(page).to_have_url(f"{compressed_site_url}practices/monitoring/")
        assert diagram_problems(page) == []
        page.locator("div.mermaid").first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=SCREENSHOTS / "chapter-with-diagram.png", animations="disabled")

        results = search(page, "lineage")
        results.first.locator("a").first.click()
        page.wait_for_load_state("load")
        assert page.url.startswith(compressed_site_url)
        page.go_back(wait_until="load")
        page.locator(".md-header__button.md-logo").click()
        expect(page).to_have_url(compressed_site_url)
        page.wait_for_load_state("load")
        assert page.problems == []
    finally:
        context.close()
    assert (SCREENSHOTS / "home.png").stat().st_size > 10_000
    assert Path(SCREENSHOTS / "chapter-with-diagram.png").stat().st_size > 10_000
