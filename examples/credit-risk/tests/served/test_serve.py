"""End to end: real `bentoml serve` processes on free loopback ports."""

import os
import signal
import socket

import httpx
import pytest
from checks import poll
from servers import AUTH, START_DEADLINE_S, assert_batch_matches_in_process, failed_start

from credit_risk import artifact
from credit_risk.schema import EXAMPLE_INPUT
from ops import processes


@pytest.mark.timeout(120)
def test_served_scores_match_the_model_in_process(server_url, service):
    applications = [EXAMPLE_INPUT,
                    EXAMPLE_INPUT.model_copy(update={"employment": "student"})]
    assert_batch_matches_in_process(server_url, service.MODEL.tag, applications)


@pytest.mark.timeout(300)
def test_a_server_stopped_after_a_hang_leaves_no_process_and_no_port(trained, tmp_path):
    """A server whose TERM is ignored (a hang) is killed with every worker, each in its own
    session, and its port is free again."""
    port = processes.free_port()
    process = processes.bentoml_serve(port, tmp_path / "serve.log")
    processes.wait_until_ready(f"http://127.0.0.1:{port}", process, START_DEADLINE_S)
    tree = processes.process_tree(process.pid)
    assert len(tree) >= 2, "bentoml serve runs its worker as a child process"
    for pid in tree:  # a hang: nothing in the tree answers SIGTERM any more
        os.kill(pid, signal.SIGSTOP)
    processes.stop(process, grace_s=2)
    assert [pid for pid in tree if processes.alive(pid, tree[pid])] == []
    # The kernel closes a killed process's sockets as it tears it down, which on a loaded
    # machine can end a moment after the process is gone: the port must be free soon after.
    poll(lambda: port_is_free(port), until=bool, deadline_s=10)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # SO_REUSEADDR lets the bind pass connections left in TIME_WAIT by the readiness
        # polls, but never a socket still listening on the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()  # fails if anything still listens there
        except OSError:
            return False
    return True


@pytest.mark.timeout(120)
def test_served_bad_input_gets_a_json_400(server_url, service):
    body = {**EXAMPLE_INPUT.model_dump(), "purpose": "yacht"}
    response = httpx.post(f"{server_url}/score", json=body, timeout=10, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["purpose"]


@pytest.mark.timeout(120)
def test_a_tampered_artifact_stops_the_server_at_start(trained, model_home, tmp_path):
    stored, _ = trained
    home = model_home
    model_file = home / "models" / stored.tag.name / stored.tag.version / artifact.ARTIFACT
    content = bytearray(model_file.read_bytes())
    content[100] ^= 0xFF
    model_file.write_bytes(content)

    returncode, output = failed_start(tmp_path / "serve.log", BENTOML_HOME=str(home),
                                      CREDIT_RISK_MODEL=str(stored.tag))
    assert returncode != 0
    assert f"credit-risk service not started: model artifact {model_file}" in output
    assert "changed since it was written" in output
