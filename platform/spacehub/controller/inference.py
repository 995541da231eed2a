"""The inference provider: the hub serves its own models by API (`/hf-inference/models/{id}`, in
HF-Inference's shapes). Each model it serves runs in a model server, a space of its own made from
templates/inference (built on the torch runtime, the model mounted read-only at /model), so it
is scheduled through the same queues, limited and isolated like an app, and scaled to zero after
idle and woken by a request like one. Model servers belong to a system organization, `hf-inference`
(a reserved name: no account can take it), with no members, so only administrators see them."""

from __future__ import annotations

import functools
import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.addresses import app_url
from spacehub.controller import environment
from spacehub.controller.access import app_link
from spacehub.controller.accounts import Principal, find_account
from spacehub.controller.context import ControllerContext
from spacehub.controller.repos import create_repo, find_repo, open_git
from spacehub.controller.spaces import handle_push, publish, redeploy_if_deployed
from spacehub.db.models import (
    Account,
    AccountKind,
    Membership,
    Repo,
    RepoType,
    Space,
    SpaceVariable,
    TokenRole,
)
from spacehub.errors import BadRequest, Conflict, PayloadTooLarge
from spacehub.repos.commits import commit_files

SYSTEM_ORG = "hf-inference"
TASKS = (
    "text-classification",
    "token-classification",
    "fill-mask",
    "feature-extraction",
    "sentence-similarity",
    "zero-shot-classification",
    "question-answering",
    "summarization",
    "translation",
    "text2text-generation",
    "text-generation",
    "image-classification",
)
# Tasks whose inputs are more than a text or an image: no try-it form on the model page.
FORMLESS_TASKS = ("zero-shot-classification", "sentence-similarity", "feature-extraction")
WEIGHTS = re.compile(r"(^|/)(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)$")
# A model needs about its weights' size in memory, and the server about this much besides.
SERVER_OVERHEAD = 600 * 1024**2
LINK_SECONDS = 300


@dataclass(frozen=True)
class Server:
    """A model's server as the hub reaches it: its app's space, and its URL through the edge with
    a signed link (the edge wakes an app and holds the request meanwhile, as for any app)."""

    space_id: int
    subdomain: str
    edge: str
    host: str
    link: str


@dataclass(frozen=True)
class Forward:
    """Where one request goes: `direct`ly to the server's app while it serves (one hop fewer; the
    hub then counts the visit itself, as the edge does), else through the `edge`, and the Host to
    send."""

    direct: str | None
    edge: str
    host: str
    space_id: int


@dataclass(frozen=True)
class Served:
    """A model's server as last made sure of: for the model's head and task then, until `renew_at`."""

    head: str
    task: str
    server: Server
    renew_at: float


# Model id -> its server, so that a warm request costs a read of the model's ref instead of git
# processes and queries (ids are never reused). Entries are renewed well before their link expires.
_served: dict[int, Served] = {}


def server_target(ctx: ControllerContext, session: Session, model: Repo, path: str) -> Forward:
    """Where to send a request for `path` of the model's server; the server is made, restarted or
    rebuilt first when the model's head or task changed (or a while passed) since this process
    last made sure of it."""
    head = open_git(ctx.settings, model).tip()
    task = card_task(model)
    served = _served.get(model.id)
    if served is None or (served.head, served.task) != (head, task) or served.renew_at < time.monotonic():
        server = reach(ctx, model_server(ctx, session, model))
        served = Served(head or "", task, server, time.monotonic() + LINK_SECONDS / 5)
        _served[model.id] = served
    server = served.server
    record = ctx.routes.get(server.subdomain)
    upstream = record.serving_upstream if record is not None else None
    path = path.lstrip("/")
    return Forward(
        direct=f"http://{upstream}/{path}" if upstream else None,
        edge=f"{server.edge}/{path}?__sign={server.link}",
        host=server.host,
        space_id=server.space_id,
    )


def forget_server(model_id: int) -> None:
    """Make sure of the model's server again on its next request (the edge did not find it running)."""
    _served.pop(model_id, None)


def model_server(ctx: ControllerContext, session: Session, model: Repo) -> Space:
    """The space that serves `model`: made on its first request; restarted when the model's head or
    task changed since, and rebuilt when the server's template did (a new spacehub release)."""
    head, task = servable(ctx, model)
    org = system_org(session)
    files, template = server_template(ctx.settings.templates_dir / "inference")
    repo = server_of(session, model)
    fresh = repo is None
    if repo is None:
        repo = create_repo(
            session,
            ctx.settings,
            Principal(account=org, role=TokenRole.WRITE),
            type=RepoType.SPACE,
            owner=org.name,
            name=f"model-{model.id}",
            private=True,
            sdk="gradio",
            hardware=ctx.settings.inference_flavor,
        )
        assert repo.space is not None
        repo.space.sleep_time = ctx.settings.inference_sleep_time
    space = repo.space
    assert space is not None
    changed = configure(session, space, model, head, task, template)
    if fresh or "SERVER_TEMPLATE" in changed:
        commit_files(open_git(ctx.settings, repo), files, "The model server", Principal(account=org).author)
        publish(ctx, space)
        handle_push(ctx, session, repo)
    elif changed:
        redeploy_if_deployed(ctx, session, space)
    return space


def server_of(session: Session, model: Repo) -> Repo | None:
    """The repository of the model's server, if it has one (named by the model's id: renames keep it)."""
    return find_repo(session, RepoType.SPACE, SYSTEM_ORG, f"model-{model.id}")


@functools.cache
def server_template(folder: Path) -> tuple[dict[str, bytes], str]:
    """The model server's files (templates/inference) and their digest, read once per process (a
    new template comes with a new release, which restarts the controller): the digest tells a
    server made from an older template."""
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    hashed = hashlib.sha256()
    for name, content in sorted(files.items()):
        hashed.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return files, hashed.hexdigest()[:16]


def configure(session: Session, space: Space, model: Repo, head: str, task: str, template: str) -> set[str]:
    """Point the server at the model's head and task; what changed."""
    mount = {"type": "model", "source": model.full_name, "mountPath": "/model", "readOnly": True}
    volumes = [{**mount, "revision": head}]
    wanted = {"MODEL_ID": model.full_name, "INFERENCE_TASK": task, "SERVER_TEMPLATE": template}
    current = {
        v.key: v.value for v in session.query(SpaceVariable).filter(SpaceVariable.space_id == space.repo_id)
    }
    changed = {key for key, value in wanted.items() if current.get(key) != value}
    for key in changed:
        environment.upsert(session, SpaceVariable, space, key, wanted[key], "set by the inference provider")
    if space.volumes != volumes:
        space.volumes = volumes
        changed.add("volumes")
    return changed


def servable(ctx: ControllerContext, model: Repo) -> tuple[str, str]:
    """The model's head commit and task (from its card; empty: from its architecture); BadRequest
    for an unknown task or a model without weights, PayloadTooLarge for one its flavor cannot hold."""
    task = card_task(model)
    if task and task not in TASKS:
        raise BadRequest(f"{model.full_name} is a {task} model; this provider serves {', '.join(TASKS)}")
    git = open_git(ctx.settings, model)
    head = git.head()
    files = {f.path: f.size for f in git.files(head)} if head else {}
    if "config.json" not in files:
        raise BadRequest(f"{model.full_name} has no config.json: push a transformers model (save_pretrained)")
    weights = sum(size for path, size in files.items() if WEIGHTS.search(path))
    if not weights:
        raise BadRequest(f"{model.full_name} has no weights (model.safetensors or pytorch_model.bin)")
    flavor = ctx.flavors[ctx.settings.inference_flavor]
    if weights + SERVER_OVERHEAD > flavor.memory_bytes:
        raise PayloadTooLarge(
            f"{model.full_name}'s weights ({weights / 1024**3:.1f} GiB) do not fit the model servers' "
            f"hardware, {flavor.name} ({flavor.memory})"
        )
    assert head is not None
    return head, task


def card_task(model: Repo) -> str:
    """The task the model's card names (`pipeline_tag`), or empty."""
    return str((model.card or {}).get("pipeline_tag") or "")


def system_org(session: Session) -> Account:
    """The organization that owns model servers (made on first use; it has no members)."""
    org = find_account(session, SYSTEM_ORG)
    if org is not None and (org.kind != AccountKind.ORG or has_members(session, org)):
        raise Conflict(
            f"the account {SYSTEM_ORG!r} is someone's (made before the name was reserved): an "
            "administrator must rename it before the hub can serve models"
        )
    if org is None:
        org = Account(name=SYSTEM_ORG, kind=AccountKind.ORG, fullname="Inference provider")
        session.add(org)
        session.flush()
    return org


def has_members(session: Session, org: Account) -> bool:
    """Whether anyone belongs to `org`."""
    return session.scalar(select(Membership.user_id).where(Membership.org_id == org.id).limit(1)) is not None


def reach(ctx: ControllerContext, server: Space) -> Server:
    """How the hub reaches the model server's app through the edge, signed in as its owner."""
    repo = server.repo
    link, _exp = app_link(ctx.settings, Principal(account=repo.owner), repo, LINK_SECONDS)
    edge = ctx.settings.resolved_edge_url
    url = app_url(ctx.settings, server.subdomain, repo.owner.name, repo.name, edge)
    host, _, prefix = url.partition("://")[2].partition("/")
    return Server(server.repo_id, server.subdomain, f"{edge}/{prefix}".rstrip("/"), host, link)
