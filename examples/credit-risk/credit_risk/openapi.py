"""The OpenAPI document at /docs.json, saying what the service really answers.

BentoML 1.4 generates the document from the API's pydantic models but declares its error
bodies wrongly (`detail` as a string, where a 400 carries a list of validation errors; see
bentoml/BentoML#4232) and knows nothing of this service's API key, limits and overload
answers. A fuzzer such as schemathesis rightly fails such a document, and clients generated
from it would mis-parse every error. BentoML offers no hook for the document, so this
middleware answers /docs.json itself: BentoML's document with each scoring route's real
responses and the API key declared as a security scheme: required, or optional when the
service runs with `allow_anonymous` (a key that is sent is still checked there).
"""

import copy

from starlette.responses import JSONResponse

ERROR = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {"type": "string", "description": "What went wrong"}},
}
VALIDATION_ERROR = {
    "type": "object", "required": ["error", "detail"], "additionalProperties": False,
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "array", "description": "One entry per invalid field", "items": {
            "type": "object", "required": ["loc", "msg", "type"],
            "properties": {
                "loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                              {"type": "integer"}]},
                        "description": "Where: field names and list positions"},
                "msg": {"type": "string"},
                "type": {"type": "string", "description": "pydantic's error type"},
            },
        }},
    },
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again",
                               "required": True, "schema": {"type": "integer", "minimum": 0}}}


def error(description: str, schema: str = "Error", headers: dict | None = None) -> dict:
    response = {"description": description, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
    return {**response, "headers": headers} if headers else response


SCORING_ERRORS = {
    "400": error("The body is not JSON or fails validation (bounds, categories, NaN or "
                 "infinity, unknown fields, batch length)", "ValidationError"),
    "401": error("No API key, or one the service does not know",
                 headers={"WWW-Authenticate": {"schema": {"type": "string"}}}),
    "403": error("The API key lacks the `score` scope"),
    "408": error("The request body did not arrive within the service's body timeout"),
    "413": error("The request body is larger than the service accepts"),
    "415": error("The request body is not sent as application/json"),
    "431": error("The request headers are larger than the service accepts"),
    "429": error("This API key sent more requests than its rate limit", headers=RETRY_AFTER),
    "503": error("The service is overloaded; another replica may answer", headers=RETRY_AFTER),
    "504": error("The request was not answered within the service's timeout"),
}
SECURITY_SCHEME = {
    "type": "apiKey", "in": "header", "name": "X-API-Key",
    "description": "A key minted with `python -m ops.api_keys new --id <client> --scope score`",
}


def declare(spec: dict, scoring_paths=("/score", "/score_batch"),
            anonymous: bool = False) -> dict:
    """BentoML's generated document with the responses and security this service has; with
    `anonymous` the key is optional ({} is OpenAPI's "no security needed")."""
    spec = copy.deepcopy(spec)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):  # BentoML's, unused
        schemas.pop(name, None)
    schemas.update(Error=ERROR, ValidationError=VALIDATION_ERROR)
    spec["components"]["securitySchemes"] = {"ApiKey": SECURITY_SCHEME}
    for path in scoring_paths:
        operation = spec["paths"][path]["post"]
        success = {str(status): answer for status, answer in operation["responses"].items()}
        operation["responses"] = {"200": success["200"], **SCORING_ERRORS}
        operation["requestBody"]["required"] = True  # BentoML leaves it optional
        operation["security"] = [{}, {"ApiKey": []}] if anonymous else [{"ApiKey": []}]
    metrics = spec["paths"]["/metrics"]["get"]
    metrics["responses"] = {str(status): answer for status, answer in metrics["responses"].items()}
    metrics["security"] = [{}, {"ApiKey": []}]  # open from the metrics_networks setting
    metrics["responses"].update({
        "401": error("From outside the allowed networks, without a valid API key"),
        "403": error("From outside the allowed networks, with a key lacking `metrics`"),
    })
    return spec


class DeclaredOpenAPI:
    """ASGI middleware: GET /docs.json answers `declare(service.openapi_spec, ...)`."""

    def __init__(self, app, service, anonymous: bool = False) -> None:
        self.app = app
        self.service = service
        self.anonymous = anonymous
        self.document: dict | None = None  # built on first request, then kept

    async def __call__(self, scope, receive, send):
        if (scope["type"], scope.get("path"), scope.get("method")) != (
                "http", "/docs.json", "GET"):
            return await self.app(scope, receive, send)
        if self.document is None:
            self.document = declare(self.service.openapi_spec.asdict(),
                                    anonymous=self.anonymous)
        await JSONResponse(self.document)(scope, receive, send)
