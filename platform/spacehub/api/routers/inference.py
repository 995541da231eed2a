"""The inference provider's API, in the request and response shapes of Hugging Face's HF-Inference
provider: `InferenceClient(model=f"{HF_ENDPOINT}/hf-inference/models/{id}")` works against it. The
hub checks that the caller may read the model, then forwards the request to the model's server
through the edge, which wakes a sleeping server and holds the request meanwhile."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.exc import IntegrityError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from spacehub.controller.context import ControllerContext
from spacehub.controller.inference import Forward, forward_target, model_server
from spacehub.controller.repos import get_readable_repo
from spacehub.db.models import RepoType
from spacehub.http.deps import request_principal
from spacehub.http.errors import error_response
from spacehub.stages import ERROR_STAGES, Stage

router = APIRouter(tags=["inference"])

MODEL = "/hf-inference/models/{owner}/{name}"
DESCRIPTION = (
    "Body and answer as Hugging Face's HF-Inference provider has them (`{inputs, parameters}`; raw "
    "bytes for images). A model's first request makes its server, which then builds: until it runs, "
    'the answer is 503 `{"error": "... is currently loading", "estimated_time": seconds}`.'
)
LOADING_ESTIMATE = 20.0


@router.post(MODEL, summary="Run the model on its task", description=DESCRIPTION)
async def run_task(owner: str, name: str, request: Request) -> Response:
    """The model's task: the card's `pipeline_tag`, else the one its architecture implies."""
    return await forward(request, owner, name, "/")


@router.post(MODEL + "/pipeline/{task}", summary="Run the model on another task", description=DESCRIPTION)
async def run_pipeline(owner: str, name: str, task: str, request: Request) -> Response:
    """Another task of the same model: `feature-extraction` or `sentence-similarity`, say."""
    return await forward(request, owner, name, f"/pipeline/{task}")


@router.post(MODEL + "/v1/chat/completions", summary="Chat completions (OpenAI-compatible)")
async def chat_completions(owner: str, name: str, request: Request) -> Response:
    """OpenAI's chat completions for models with a chat template; `stream: true` answers with
    Server-Sent Events."""
    return await forward(request, owner, name, "/v1/chat/completions")


def prepare(ctx: ControllerContext, request: Request, owner: str, name: str, path: str) -> Forward:
    """The model's server (made if new) and how to reach it, if the caller may read the model.
    Two first requests at once both try to make the server: the one that loses finds it made."""
    for attempt in (1, 2):
        try:
            with ctx.session() as session:
                principal = request_principal(ctx, session, request)
                model = get_readable_repo(session, principal, RepoType.MODEL, owner, name)
                return forward_target(ctx, model_server(ctx, session, model), path)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def forward(request: Request, owner: str, name: str, path: str) -> Response:
    """Send the request on to the model's server and stream its answer back."""
    ctx: ControllerContext = request.app.state.ctx
    target = await run_in_threadpool(prepare, ctx, request, owner, name, path)
    headers = {"Host": target.host}
    if "content-type" in request.headers:
        headers["Content-Type"] = request.headers["content-type"]
    client = edge_client(request.app)
    upstream = client.build_request("POST", target.url, headers=headers, content=await request.body())
    try:
        answer = await client.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        return error_response(502, f"the model server of {owner}/{name} did not answer: {exc}")
    if answer.status_code in (404, 503) and answer.headers.get("x-spacehub-edge"):
        body = await answer.aread()
        await answer.aclose()
        return not_running(f"{owner}/{name}", body)
    return StreamingResponse(
        answer.aiter_raw(),
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type"),
        background=BackgroundTask(answer.aclose),
    )


def not_running(model: str, body: bytes) -> Response:
    """The edge's answer for a server that does not run yet, as HF-Inference says it: loading
    (503, with an estimate), or failed (500, with the reason). A server made a moment ago may be
    unknown to the edge still (404): it is loading too."""
    try:
        edge: dict[str, Any] = json.loads(body)
    except ValueError:
        edge = {}
    stage = edge.get("stage") or ""
    if stage in {s.value for s in ERROR_STAGES}:
        return error_response(500, f"{model} could not be loaded ({stage}): {edge.get('error', '')}")
    if stage == Stage.PAUSED.value:
        return error_response(503, f"{model}'s server is paused by an administrator")
    message = f"Model {model} is currently loading"
    return error_response(503, message, estimated_time=LOADING_ESTIMATE)


def edge_client(app: FastAPI) -> httpx.AsyncClient:
    """One HTTP client for every forwarded request (its connections are reused)."""
    client = getattr(app.state, "edge_client", None)
    if client is None:
        timeout = httpx.Timeout(10.0, read=300.0)
        client = app.state.edge_client = httpx.AsyncClient(timeout=timeout, trust_env=False)
    return client
