"""Every error the application answers is JSON: `{"error": "..."}`, as the README promises.

BentoML's routes (Starlette underneath) answer an unknown path with a plain-text 404 and a
wrong method with a plain-text 405 ("Not Found", "Method Not Allowed"). This layer, the
outermost, rewrites any error answer (status 400 or above) whose body is not JSON into
`{"error": <that text>}` with the same status and the same headers (Allow included). JSON
answers, and every success, pass through untouched and unbuffered.

What it cannot reach: a request that is not valid HTTP never gets to the application.
Uvicorn, which BentoML runs its workers on, parses HTTP itself (with httptools, or h11) and
answers a malformed request at once with a hard-coded `400 Bad Request`, `text/plain`,
"Invalid HTTP request received.", then closes the connection. BentoML passes uvicorn no
`http=` protocol class (only host, port, backlog, TLS and keep-alive options), so the only
way to change that body would be to replace uvicorn's protocol classes in the worker: too
much private machinery for a reply to a client that is not speaking HTTP. Behind nginx
(deploy/nginx/), nginx answers malformed requests before they reach the service at all.
tests/served/test_errors_served.py pins the behaviour, so an upgrade that changes it shows.
"""

import json
from http import HTTPStatus

JSON_TYPES = (b"application/json",)


def is_json(content_type: bytes) -> bool:
    media_type = content_type.partition(b";")[0].strip().lower()
    return media_type in JSON_TYPES or media_type.endswith(b"+json")


def message_of(body: bytes, status: int) -> str:
    """The error's own short text when it has one, else the status's standard phrase."""
    text = body.decode("utf-8", "replace").strip()
    if text and len(text) <= 200 and text.isprintable():
        return text
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class JsonErrors:
    """ASGI middleware: non-JSON error answers become {"error": ...}, same status."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        held: dict | None = None  # the start of an error answer being rewritten
        body = bytearray()

        async def rewriting_send(message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = next((value for name, value in message.get("headers", [])
                                     if name.lower() == b"content-type"), b"")
                if message["status"] >= 400 and not is_json(content_type):
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                payload = json.dumps({"error": message_of(bytes(body), held["status"])})
                headers = [(name, value) for name, value in held.get("headers", [])
                           if name.lower() not in (b"content-type", b"content-length")]
                headers += [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]
                await send({**held, "headers": headers})
                await send({"type": "http.response.body", "body": payload.encode()})
                return
            await send(message)

        await self.app(scope, receive, rewriting_send)
