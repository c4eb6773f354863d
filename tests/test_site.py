"""The site: strict build, offline-safe assets, dangling includes caught, no broken links."""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from conftest import BIN, ROOT, nav_pages

LOADED_LINK_RELS = ("stylesheet", "icon", "preload", "modulepreload")
ASSET_TAGS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "link": "href"}


class AssetCollector(HTMLParser):
    """Collects the URLs a page loads by itself (not the links a reader may click)."""

    def __init__(self):
        super().__init__()
        self.assets: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("rel") not in LOADED_LINK_RELS:
            return
        if url := attrs.get(ASSET_TAGS.get(tag, "")):
            self.assets.append(url)


def test_build_has_every_page_and_the_executed_notebook(built_site):
    for page in nav_pages():
        built = Path(page).with_suffix("") / "index.html" if page != "index.md" else "index.html"
        assert (built_site / built).is_file(), page
    notebook_page = (built_site / "notebooks/quickstart/index.html").read_text()
    assert "jp-OutputArea-output" in notebook_page
    assert "data:image/png;base64" in notebook_page, "the plot from the executed run is missing"


def test_pages_load_nothing_from_other_hosts(built_site):
    external = []
    for page in built_site.rglob("*.html"):
        collector = AssetCollector()
        collector.feed(page.read_text())
        external += [f"{page.relative_to(built_site)}: {url}" for url in collector.assets
                     if re.match(r"(https?:)?//", url)]
    css_url = re.compile(r"""(?:url\(|@import\s+)["']?((?:https?:)?//[^"')]+)""")
    for css in built_site.rglob("*.css"):
        external += [f"{css.name}: {url}" for url in css_url.findall(css.read_text())]
    assert external == []


CDN = re.compile(r"(?:https?:)?//(?:cdnjs\.cloudflare\.com|unpkg\.com|cdn\.jsdelivr\.net)"
                 r"[^\s\"'`)]*")


def cdn_references(site: Path) -> list[str]:
    """Every CDN URL in the built pages and scripts, except Material's bundle: it keeps
    unpkg.com as the fallback for a page without `window.mermaid`, which the pages with a
    diagram define (the browser test shows no request leaves the host)."""
    found = []
    for file in [*site.rglob("*.html"), *site.rglob("*.js")]:
        if file.match("assets/javascripts/bundle.*.min.js"):
            continue
        found += [f"{file.relative_to(site)}: {url}"
                  for url in CDN.findall(file.read_text(errors="replace"))]
    return found


def test_no_page_or_script_refers_to_a_cdn(built_site, tmp_path):
    assert cdn_references(built_site) == []
    # The checker sees mkdocs-jupyter's Mermaid loader, which the hook removes from notebooks.
    planted = tmp_path / "page.html"
    planted.write_text('<script type="module">const m = (await import('
                       '"https://cdnjs.cloudflare.com/ajax/libs/mermaid/11.10.0/'
                       'mermaid.esm.min.mjs")).default;</script>')
    assert len(cdn_references(tmp_path)) == 1


def test_pages_with_a_diagram_load_the_vendored_mermaid(built_site):
    with_diagram = [page for page in built_site.rglob("*.html")
                    if 'class="mermaid"' in page.read_text()]
    for page in with_diagram:
        assert "assets/vendor/mermaid/mermaid.min.js" in page.read_text(), page
    assert (built_site / "assets/vendor/mermaid/mermaid.min.js").is_file()
    assert not (built_site / "assets/vendor/axe-core").exists()  # the tests' copy only


def test_dangling_snippet_include_fails_the_build(tmp_path):
    # The repository as the site build sees it, without environments, git, caches and the
    # model store (pages do include files that notebooks write under build/).
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=lambda folder, names: [
        name for name in names
        if name in {".venv", ".git", "site", ".cache", "__pycache__", ".pytest_cache"}
        or (Path(folder) == ROOT / "build" and name == "bentoml")])
    page = repo / "docs" / "getting-started.md"
    page.write_text(page.read_text() + '\n--8<-- "examples/quickstart/no_such_file.py"\n')
    result = subprocess.run(
        [BIN / "mkdocs", "build", "--strict", "--site-dir", tmp_path / "site"],
        cwd=repo, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "no_such_file.py" in result.stderr


def test_no_broken_internal_links(compressed_site_url):
    # The site as published: under a sub-path, so a link that escapes it is broken too.
    result = subprocess.run(
        [BIN / "linkchecker", "--config", ROOT / "tests" / "linkcheckerrc", "--no-status",
         compressed_site_url],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert re.search(r"\b0 errors found", result.stdout), result.stdout[-2000:]
