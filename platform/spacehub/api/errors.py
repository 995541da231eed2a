"""One place that turns errors into responses the Hugging Face clients understand."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from spacehub.errors import SpacehubError

log = logging.getLogger(__name__)


def error_response(status_code: int, message: str, code: str | None = None) -> JSONResponse:
    headers = {"X-Error-Message": message.encode("ascii", "replace").decode()[:1000]}
    if code:
        headers["X-Error-Code"] = code
    if status_code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="spacehub"'
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{location}: {error.get('msg')}" if location else str(error.get("msg")))
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SpacehubError)
    async def handle_spacehub_error(_request: Request, exc: SpacehubError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.error_code)

    @app.exception_handler(RequestValidationError)
    async def handle_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _describe_validation(exc), "BadRequest")

    @app.exception_handler(HTTPException)
    async def handle_http_exception(_request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the operator can find details in the controller log")
