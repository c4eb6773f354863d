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


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The site as `mkdocs build --strict` writes it from the executed notebooks."""
    site = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [BIN / "mkdocs", "build", "--strict", "--site-dir", site],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
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
