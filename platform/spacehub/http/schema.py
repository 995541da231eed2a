"""The OpenAPI schema as the API really answers: errors are `{"error": ...}` with X-Error-Code and
X-Error-Message (400 for a request that does not validate, where FastAPI would document 422), and
every operation lists the errors it can give."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "What went wrong, and what to fix."}},
    "required": ["error"],
}
ERRORS = {
    "400": "Bad request: a parameter or the body is invalid (the message names it)",
    "401": "Unauthorized: the token is missing, invalid or revoked",
    "403": "Forbidden: the token may not do this (a read token, or another owner's repository)",
    "404": "Not found (also what a private repository answers to those who may not see it)",
    "409": "Conflict: the name is taken, or the branch moved on",
    "413": "Payload too large",
}
CONFLICTS = (
    "/api/repos/create",
    "/api/repos/move",
    "/duplicate",
    "/commit/",
    "/discussions/",
    "/custom-domain",
)
GIT_SUFFIXES = ("/info/refs", "/git-upload-pack", "/git-receive-pack")  # git's errors are plain text
NAMED_IN_BODY = ("/api/repos/delete", "/api/repos/move")  # the repository they name may not exist
VIEWER = "/viewer/"  # names its dataset in the query; a split too large for it is a 413


def errors_of(path: str, method: str) -> list[str]:
    """The error statuses an operation can answer with."""
    codes = ["400", "401"]
    if method != "get" or path.startswith("/api/admin") or path.endswith(GIT_SUFFIXES):
        codes.append("403")
    if "{" in path or path.startswith(VIEWER) or path in NAMED_IN_BODY:
        codes.append("404")
    if any(marker in path for marker in CONFLICTS):
        codes.append("409")
    if "/commit/" in path or path.startswith(VIEWER):
        codes.append("413")
    return codes


def install_schema(app: FastAPI) -> None:
    """Replace the app's schema with one that documents its errors as they are."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        git_error = {"text/plain": {"schema": {"type": "string"}}}
        for path, operations in schema.get("paths", {}).items():
            content = git_error if path.endswith(GIT_SUFFIXES) else error
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for code in errors_of(path, method):
                    responses.setdefault(code, {"description": ERRORS[code], "content": content})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
