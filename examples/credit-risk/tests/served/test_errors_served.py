"""Errors of a real `bentoml serve`, in anonymous mode, over raw sockets where httpx would
not send the request: 404 and 431 are JSON and the OpenAPI key is optional; a malformed
request is answered by uvicorn before the application, in plain text (why it cannot be JSON:
credit_risk/middleware/errors.py). The last check pins that, so an upgrade that changes it
shows up here."""

import socket

import httpx
import pytest
from servers import served

pytestmark = pytest.mark.timeout(180)


def raw_request(url: str, request: bytes) -> tuple[str, str, bytes]:
    """Status line, content type and body of the answer to raw bytes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
            if b"\r\n\r\n" in raw and raw.lower().count(b"content-length") and \
                    len(raw.partition(b"\r\n\r\n")[2]) >= int(
                        raw.lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
                break
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return lines[0], headers.get("content-type", ""), body


def test_served_errors(trained, tmp_path):
    with served(tmp_path / "serve.log", CREDIT_RISK_ALLOW_ANONYMOUS="1") as url:
        missing = httpx.get(f"{url}/no-such-route", timeout=10)
        big = raw_request(url, b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Padding: "
                          + b"a" * 20_000 + b"\r\n\r\n")
        spec = httpx.get(f"{url}/docs.json", timeout=10).json()
        malformed = raw_request(url, b"THIS IS NOT HTTP\r\n\r\n")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    assert big[:2] == ("HTTP/1.1 431 Request Header Fields Too Large", "application/json")
    assert spec["paths"]["/score"]["post"]["security"] == [{}, {"ApiKey": []}]
    print("malformed request answered:", malformed)
    assert malformed == ("HTTP/1.1 400 Bad Request", "text/plain; charset=utf-8",
                         b"Invalid HTTP request received.")
