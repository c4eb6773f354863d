"""Slow uploads cannot crowd out other clients: a request takes an in-flight slot only once
its whole body has arrived, and a body that does not arrive in time gets a 408.

150 raw connections (more than the 128 slots) each announce a 500-byte body and send ten
bytes of it. While the server holds all of them, normal clients must get 200s, never a 503;
then each slow connection gets its 408 JSON at its deadline.
"""

import json
import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import AUTH, served

from credit_risk.schema import EXAMPLE_INPUT
from ops.processes import wait_until

pytestmark = pytest.mark.timeout(180)
SLOW_CLIENTS = 150  # the default max_in_flight is 128
BODY_TIMEOUT_S = 5


def slow_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 500\r\n"
                 b"X-API-Key: " + AUTH["X-API-Key"].encode() + b"\r\n\r\n" + b'{"annual_i')
    return sock


def in_progress(url: str, endpoint: str = "/score") -> float:
    """BentoML's gauge of requests inside the app (counted before this service's layers)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               if family.name == "bentoml_service_request_in_progress"
               for sample in family.samples if sample.labels.get("endpoint") == endpoint)


def answered(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return True  # data, or the connection closed
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)


def read_answer(sock: socket.socket) -> tuple[int, dict, dict]:
    """Status, headers and JSON body of the answer; the server closes the connection."""
    sock.settimeout(BODY_TIMEOUT_S + 10)
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_slow_uploads_do_not_crowd_out_other_clients(trained, tmp_path):
    with served(tmp_path / "serve.log", CREDIT_RISK_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S)) as url:
        port = int(url.rsplit(":", 1)[1])
        slow = []
        try:
            slow = [slow_client(port) for _ in range(SLOW_CLIENTS)]
            # Every slow client reached the app: held there, or already answered.
            wait_until(lambda: in_progress(url) + sum(map(answered, slow)) >= SLOW_CLIENTS,
                       20, "server reading every slow client")
            with httpx.Client(headers=AUTH, timeout=10) as client:
                statuses = [client.post(f"{url}/score", json=EXAMPLE_INPUT.model_dump())
                            .status_code for _ in range(30)]
            waiting = sum(not answered(sock) for sock in slow)
            print(f"{SLOW_CLIENTS} slow clients held; normal clients got {statuses.count(200)} "
                  f"x 200, {statuses.count(503)} x 503; {waiting} slow clients still waiting")
            assert statuses == [200] * 30
            assert waiting == SLOW_CLIENTS  # none refused, all held throughout the calls
            status, headers, body = read_answer(slow[0])
            assert (status, headers["content-type"]) == (408, "application/json")
            assert "did not arrive within 5 s" in body["error"]
            wait_until(lambda: all(answered(sock) for sock in slow), BODY_TIMEOUT_S + 10,
                       "every slow client answered")
        finally:
            for sock in slow:
                sock.close()
