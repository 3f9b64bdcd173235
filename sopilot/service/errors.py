"""Every error leaves the service as JSON `{"error": {"code", "message"}}`, never as a traceback.

Our exception hierarchy maps onto HTTP once, here: bad input 422 (malformed JSON 400), no or
unknown key 401, a role not allowed 403, an unknown suggestion or policy 404, a body too large
413, and a missing index, database or helpdesk 503. Anything else is logged with its traceback
on the server and answered 500 with a message that says where to look.
"""

from __future__ import annotations

import logging

from sopilot.core.errors import (
    AuthenticationError,
    ConfigError,
    IndexNotFoundError,
    LLMError,
    NotFoundError,
    PermissionDenied,
    SopilotError,
    StoreError,
    UserError,
)
from sopilot.helpdesk.rt import HelpdeskError

log = logging.getLogger("sopilot.service")

STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (AuthenticationError, 401, "unauthorized"),
    (PermissionDenied, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (IndexNotFoundError, 503, "not_ready"),
    (ConfigError, 503, "misconfigured"),
    (UserError, 422, "invalid_input"),
    (StoreError, 503, "store_unavailable"),
    (LLMError, 503, "llm_unavailable"),
    (HelpdeskError, 503, "helpdesk_unavailable"),
)
"""Most specific first: the first class an error is an instance of decides its status and code."""

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
              422: "invalid_request", 503: "not_ready"}


def body(code: str, message: str) -> dict:
    """The error document."""
    return {"error": {"code": code, "message": message}}


def classify(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, error code) of one of our exceptions."""
    for cls, status, code in STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal"


def install(app) -> None:
    """Register the exception handlers on a FastAPI app."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(body("malformed_json", "the body is not valid JSON: send a JSON object"), 400)
        parts = []
        for e in errors[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return JSONResponse(body("invalid_request", "; ".join(parts) + " (see /openapi.json for the shapes)"), 422)

    @app.exception_handler(HTTPException)
    async def _http(_request, exc: HTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return JSONResponse(body(HTTP_CODES.get(exc.status_code, "error"), message), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(SopilotError)
    async def _ours(_request, exc: SopilotError):
        status, code = classify(exc)
        if status == 500:
            log.error("unexpected %s: %s", type(exc).__name__, exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body(code, str(exc)), status, headers=headers)

    @app.exception_handler(Exception)
    async def _anything(_request, exc: Exception):
        log.exception("internal error", exc_info=exc)
        return JSONResponse(body("internal", "internal error: the service log has the details"), 500)
