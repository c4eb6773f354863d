"""A reader's visit in a real browser: Playwright driving Debian's Chromium (never a download)."""

import os
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import require_tool

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def page():
    chromium = require_tool(os.environ.get("CHROMIUM", "chromium"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.console_errors = []
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        page.on("pageerror", lambda error: page.console_errors.append(str(error)))
        page.on("requestfailed", lambda r: page.console_errors.append(f"{r.url}: {r.failure}"))
        yield page
        browser.close()


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
