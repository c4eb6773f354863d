"""Start, wait for and stop local processes: the one copy every operator tool and test uses."""

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

HOST = "127.0.0.1"
EXAMPLE_DIR = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def answers(url: str, verify: ssl.SSLContext | bool = True) -> bool:
    """Whether `url` answers 200 right now."""
    try:
        return httpx.get(url, timeout=1, verify=verify).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(condition, deadline_s: float, what: str, alive=lambda: True) -> None:
    """Poll `condition()` until true; raise if `alive()` turns false or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if not alive():
            raise RuntimeError(f"{what}: the process exited")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {deadline_s:.0f} s")
        time.sleep(0.1)


def wait_until_ready(url: str, process: subprocess.Popen, deadline_s: float,
                     what: str = "server", verify: ssl.SSLContext | bool = True) -> None:
    """Poll url/readyz until it answers 200; fail early if the process exits."""
    wait_until(lambda: answers(f"{url}/readyz", verify), deadline_s,
               f"{what} at {url}/readyz", alive=lambda: process.poll() is None)


def bentoml_serve(port: int, log: Path, cwd: Path = EXAMPLE_DIR, target: str = "service:CreditRisk",
                  extra_args: tuple = (), **env: str) -> subprocess.Popen:
    """Start `bentoml serve` in its own session, its output to the file `log` (a pipe nobody
    reads would fill up with access-log lines and block the server)."""
    with open(log, "a") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", target, "--host", HOST,
             "--port", str(port), *extra_args],
            cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1", **env},
            start_new_session=True, stdout=output, stderr=subprocess.STDOUT)


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process from /proc, or None (zombies included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None if fields[0] in "ZX" else (int(fields[1]), fields[19])


def alive(pid: int, started: str) -> bool:
    """Whether `pid` is still the process that started at `started` (see process_tree)."""
    stat = _stat(pid)
    return stat is not None and stat[1] == started


def children(pid: int) -> set[int]:
    """The direct child processes of `pid`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[0] == pid:
            found.add(int(entry.name))
    return found


def process_tree(pid: int) -> dict[int, str]:
    """{pid: start time} for pid and all its descendants (Linux /proc).

    BentoML's process manager starts each worker in a session of its own, so signalling the
    `bentoml serve` process group does not reach the workers: after a SIGKILL of the group,
    the orphaned worker keeps the listening socket and goes on serving.
    """
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            parents[int(entry.name)] = stat
    tree, todo = {}, [pid]
    while todo:
        current = todo.pop()
        if current in parents:
            tree[current] = parents[current][1]
            todo.extend(child for child, (parent, _) in parents.items() if parent == current)
    return tree


def kill_tree(tree: dict[int, str], sig: int = signal.SIGKILL) -> None:
    """Signal each process of a process_tree() that is still the same process (start time)."""
    for pid, started in tree.items():
        if alive(pid, started):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def kill(process: subprocess.Popen) -> None:
    """Crash it: SIGKILL the process and every process under it, and reap it."""
    if process.poll() is None:
        kill_tree(process_tree(process.pid))
        process.wait(timeout=15)


def stop(process: subprocess.Popen | None, grace_s: float = 15) -> None:
    """SIGTERM the process group; after `grace_s`, SIGKILL the whole tree (each worker in its
    own session included) that was there when the stop began, and anything left of it."""
    if process is None:
        return
    tree = process_tree(process.pid) if process.poll() is None else {}
    if tree:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    kill_tree(tree)  # a no-op after a clean shutdown: those processes are gone
    process.wait()
    # A killed process releases its sockets only once it has exited: return after that, so
    # the caller may reuse the port at once.
    wait_until(lambda: not any(alive(pid, started) for pid, started in tree.items()), 15,
               f"process tree of {process.pid} to exit")
