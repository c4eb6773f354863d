"""`make serve` runs `mkdocs serve`; the dev server must come up and show the executed notebook."""

import subprocess

import httpx
import pytest

from conftest import BIN, ROOT, free_port, start_server, stop


@pytest.mark.timeout(180)
def test_dev_server_serves_the_executed_notebook():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(
        [BIN / "mkdocs", "serve", "--dev-addr", f"127.0.0.1:{port}", "--livereload"],
        f"{url}/", cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        page = httpx.get(f"{url}/notebooks/quickstart/", timeout=10)
        assert page.status_code == 200
        assert "jp-OutputArea-output" in page.text
        assert "livereload" in page.text
    finally:
        stop(server)
