"""Fixtures shared by the repo-level checks: paths, tools, free ports, servers, the built site."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI") == "true"


# The checks `make test-fast` runs: no executed notebook, no system tool, no server.
FAST_MODULES = {"test_lock", "test_checklist", "test_diagrams", "test_workflows",
                "test_handbook_cli", "test_settings_reference", "test_openings"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__ in FAST_MODULES or item.name.startswith(
                "test_committed_notebook_has_no_outputs"):
            item.add_marker(pytest.mark.fast)


def require_tool(name: str) -> str:
    """Path of a system tool; a missing one skips the test, except in CI where it fails."""
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` is not installed (the Makefile's system-deps step installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def nav_pages() -> list[str]:
    """Every page file the mkdocs.yml nav lists, relative to docs/."""

    def pages(items):
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from pages(value) if isinstance(value, list) else [value]

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    return list(pages(config["nav"]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, deadline_s: float = 60) -> None:
    """Poll url until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {deadline_s}s")


def stop(process: subprocess.Popen) -> None:
    """Stop a process started with start_new_session=True, and everything it spawned."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_server(command: list[str], ready_url: str, **popen_args) -> subprocess.Popen:
    """Start a server in its own process group and wait until ready_url answers."""
    process = subprocess.Popen(command, start_new_session=True, **popen_args)
    try:
        wait_for_http(ready_url, process)
    except BaseException:
        stop(process)
        raise
    return process


# For development only, never in CI: HANDBOOK_TEST_DRAFT_SITE=1 builds the test site in draft
# mode (HANDBOOK_DRAFT=1, see overrides/hooks.py), so the browser and site tests can run on a
# checkout whose notebooks have not been executed. Tests that look for executed outputs fail.
DRAFT_SITE = os.environ.get("HANDBOOK_TEST_DRAFT_SITE") == "1"


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The site as `mkdocs build --strict` writes it from the executed notebooks."""
    if DRAFT_SITE and IN_CI:
        pytest.fail("HANDBOOK_TEST_DRAFT_SITE is for development; CI builds the real site")
    site = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [BIN / "mkdocs", "build", "--strict", "--site-dir", site],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HANDBOOK_DRAFT": "1" if DRAFT_SITE else "0"},
    )
    assert result.returncode == 0, result.stderr
    return site


@pytest.fixture(scope="session")
def site_url(built_site):
    """The built site served over HTTP on a free loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(built_site)],
        f"{url}/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    yield url
    stop(process)


SITE_PREFIX = "/handbook/"


@pytest.fixture(scope="session")
def compressed_site_url(built_site):
    """The built site as a host would publish it: gzip-compressed, under a sub-path
    (http://127.0.0.1:<port>/handbook/), so links and assets must be relative to work."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{SITE_PREFIX}"
    process = start_server(
        [sys.executable, __file__, str(built_site), str(port), SITE_PREFIX], url,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    yield url
    stop(process)


def serve_compressed(directory: str, port: int, prefix: str) -> None:
    """A static file server that answers gzip when asked to, and only under prefix."""
    import gzip
    import mimetypes
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import unquote, urlsplit

    root = Path(directory).resolve()
    compressible = ("text/", "application/javascript", "application/json", "image/svg+xml",
                    "application/xml")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = unquote(urlsplit(self.path).path)
            if not path.startswith(prefix):
                return self.send_error(404)
            file = (root / path[len(prefix):]).resolve()
            if root not in file.parents and file != root:
                return self.send_error(404)
            if file.is_dir():
                if not path.endswith("/"):
                    self.send_response(301)
                    self.send_header("Location", path + "/")
                    self.end_headers()
                    return None
                file = file / "index.html"
            if not file.is_file():
                return self.send_error(404)
            body = file.read_bytes()
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self.send_response(200)
            # Text gets its charset, as static hosts send it (LinkChecker otherwise guesses
            # with chardet, which fails once it has dropped root, reading the .venv as nobody).
            self.send_header("Content-Type",
                             f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)
            if (kind.startswith(compressible)
                    and "gzip" in self.headers.get("Accept-Encoding", "")):
                body = gzip.compress(body, compresslevel=6)
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
            self.send_header("Cache-Control", "max-age=600")  # as a static host would
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":  # the server process compressed_site_url starts
    serve_compressed(sys.argv[1], int(sys.argv[2]), sys.argv[3])
