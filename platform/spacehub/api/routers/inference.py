"""The inference provider's API, in the request and response shapes of Hugging Face's HF-Inference
provider: `InferenceClient(model=f"{HF_ENDPOINT}/hf-inference/models/{id}")` works against it. The
hub checks that the caller may read the model, then forwards the request to the model's server:
straight to it while it serves, else through the edge, which wakes it and holds the request."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import aiohttp
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.exc import IntegrityError
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.concurrency import run_in_threadpool

from spacehub.controller.context import ControllerContext
from spacehub.controller.inference import Forward, forget_server, server_target
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


def prepare(
    ctx: ControllerContext, request: Request, owner: str, name: str, path: str
) -> tuple[int, Forward]:
    """The model's id, and where its request goes (its server made if new), if the caller may read
    the model. Two first requests at once both try to make the server: the one that loses finds it
    made."""
    for attempt in (1, 2):
        try:
            with ctx.session() as session:
                principal = request_principal(ctx, session, request)
                model = get_readable_repo(session, principal, RepoType.MODEL, owner, name)
                return model.id, server_target(ctx, session, model, path)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def forward(request: Request, owner: str, name: str, path: str) -> Response:
    """Send the request on to the model's server and stream its answer back: straight to it while
    it serves (a visit the hub counts, as the edge counts its own), else through the edge, which
    wakes it and holds the request."""
    ctx: ControllerContext = request.app.state.ctx
    visits = request.app.state.activity
    model_id, target = await run_in_threadpool(prepare, ctx, request, owner, name, path)
    headers = {"Host": target.host}
    if "content-type" in request.headers:
        headers["Content-Type"] = request.headers["content-type"]
    body = await request.body()
    client: aiohttp.ClientSession = request.app.state.model_servers
    visit = contextlib.ExitStack()
    answer = None
    try:
        if target.direct:
            await visits.touch(target.space_id)
            visit.enter_context(visits.in_flight(target.space_id))
            # Not where its route says (it moved, or stopped a moment ago): the edge finds it.
            with contextlib.suppress(aiohttp.ClientConnectorError):
                answer = await send(client, target.direct, headers, body)
        if answer is None:
            visit.close()
            answer = await send(client, target.edge, headers, body)
    except aiohttp.ClientError as exc:
        visit.close()
        return error_response(502, f"the model server of {owner}/{name} did not answer: {exc}")
    if answer.status in (404, 503) and answer.headers.get("x-spacehub-edge"):
        edge_answer = await answer.read()
        answer.release()
        forget_server(model_id)
        return not_running(f"{owner}/{name}", edge_answer)
    return StreamingResponse(
        answer.content.iter_any(),
        status_code=answer.status,
        media_type=answer.headers.get("content-type"),
        background=BackgroundTasks([BackgroundTask(answer.release), BackgroundTask(visit.close)]),
    )


async def send(
    client: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes
) -> aiohttp.ClientResponse:
    """POST `body` to `url`; the answer's headers, its body left to stream."""
    return await client.post(url, headers=headers, data=body)


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
