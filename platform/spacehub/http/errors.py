"""One place that turns errors into responses: JSON with `X-Error-Code` / `X-Error-Message` as the
Hugging Face clients understand them, or, for a browser on the hub's pages, the page the web layer
renders."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from spacehub.errors import SpacehubError

log = logging.getLogger(__name__)


def header_value(text: str, limit: int = 1000) -> str:
    """User text made fit for a header: printable ASCII only (a control character would make the
    server drop the connection), at most `limit` characters."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return printable[:limit]


def error_response(status_code: int, message: str, code: str | None = None, **extra: Any) -> JSONResponse:
    """An error as the Hub answers it: JSON `{"error": ...}` (and `extra` fields), the X-Error headers."""
    headers = {"X-Error-Message": header_value(message)}
    if code:
        headers["X-Error-Code"] = code
    if status_code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="spacehub"'
    return JSONResponse({"error": message, **extra}, status_code=status_code, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{location}: {error.get('msg')}" if location else str(error.get("msg")))
    return "invalid request: " + "; ".join(parts)


def is_page(request: Request) -> bool:
    """A browser navigating the hub's pages (not the API, not git)."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


ErrorPage = Callable[[Request, int, str], Response]


def page_or_login(request: Request, status: int, message: str, page: ErrorPage) -> Response:
    """A page that needs an account sends to the login page; other errors get the error page."""
    if status == 401:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return page(request, status, message)


def methods_of_closer_route(routes: list[APIRoute], request: Request) -> set[str]:
    """The methods of a route that names this path more closely (more literal segments) than the
    route that took the request, when they do not include its method: `GET /api/validate-yaml` is
    a wrong method for `POST /api/validate-yaml`, not a bad repo type for `GET /api/{type_plural}`."""
    path, method = request.url.path, request.method
    matching = [r for r in routes if r.path_regex.match(path)]
    taken = next((r for r in matching if method in (r.methods or ())), None)
    if taken is None:
        return set()
    fewest = min(len(r.param_convertors) for r in matching)
    if fewest >= len(taken.param_convertors):
        return set()
    closer = {m for r in matching if len(r.param_convertors) == fewest for m in r.methods or ()}
    return closer if method not in closer else set()


def install_error_handlers(app: FastAPI, error_page: ErrorPage, api_routes: list[APIRoute]) -> None:
    """Render every error as the Hub's clients expect it, or as `error_page` for browsers."""

    @app.exception_handler(SpacehubError)
    async def handle_spacehub_error(request: Request, exc: SpacehubError) -> Response:
        if is_page(request):
            return await run_in_threadpool(page_or_login, request, exc.status_code, exc.message, error_page)
        return error_response(exc.status_code, exc.message, exc.error_code)

    @app.exception_handler(RequestValidationError)
    async def handle_validation_error(request: Request, exc: RequestValidationError) -> Response:
        allowed = methods_of_closer_route(api_routes, request)
        if allowed:
            response = error_response(405, f"{request.method} is not allowed here", "MethodNotAllowed")
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        if is_page(request):
            return await run_in_threadpool(page_or_login, request, 400, _describe_validation(exc), error_page)
        return error_response(400, _describe_validation(exc), "BadRequest")

    @app.exception_handler(HTTPException)
    async def handle_http_exception(request: Request, exc: HTTPException) -> Response:
        if is_page(request):
            return await run_in_threadpool(
                page_or_login, request, exc.status_code, str(exc.detail), error_page
            )
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the operator can find details in the controller log")
