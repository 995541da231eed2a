"""Platform administration (not part of the Hub API): users, organizations and tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from spacehub.controller import admin
from spacehub.controller.accounts import revoke_token
from spacehub.controller.admin import queue_views, retry_failed_job
from spacehub.controller.context import ControllerContext
from spacehub.controller.hosts import HostView, host_views, space_names
from spacehub.controller.repos import find_repo
from spacehub.controller.serializers import iso
from spacehub.controller.spaces import move, pause, restart
from spacehub.db.models import Account, RepoType, Space, Token, TokenRole
from spacehub.errors import NotFound
from spacehub.http.deps import AdminDep, CtxDep, SessionDep

router = APIRouter(prefix="/api/admin", tags=["admin"])


class UserCreate(BaseModel):
    name: str = Field(description="Login and namespace of the user.")
    fullname: str | None = None
    email: str | None = None
    is_admin: bool = False


class OrgCreate(BaseModel):
    name: str
    fullname: str | None = None


class AccountPublic(BaseModel):
    id: int
    name: str
    type: Literal["user", "org"]
    fullname: str | None
    is_admin: bool
    disabled: bool
    created_at: str | None


class MemberAdd(BaseModel):
    user: str
    role: Literal["admin", "write", "read"] | None = Field(
        None, description="The member's role; unset keeps an existing member's (`write` for a new one)."
    )


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: TokenRole = TokenRole.WRITE


class TokenPublic(BaseModel):
    id: int
    name: str
    role: TokenRole
    user: str
    hint: str = Field(description="The token's last characters, to recognise it.")
    created_at: str | None
    last_used_at: str | None
    revoked: bool


class TokenCreated(TokenPublic):
    token: str = Field(description="The token itself. Shown only in this response.")


def account_public(account: Account) -> AccountPublic:
    """An account as the admin API shows it."""
    return AccountPublic(
        id=account.id,
        name=account.name,
        type=account.kind.value,
        fullname=account.fullname,
        is_admin=account.is_admin,
        disabled=account.disabled,
        created_at=iso(account.created_at),
    )


def token_public(token: Token) -> TokenPublic:
    """A token as the admin API shows it: its metadata and hint, never its secret."""
    return TokenPublic(
        id=token.id,
        name=token.name,
        role=token.role,
        user=token.account.name,
        hint=token.hint,
        created_at=iso(token.created_at),
        last_used_at=iso(token.last_used_at),
        revoked=token.revoked_at is not None,
    )


@router.get("/users", response_model=list[AccountPublic])
def list_accounts(session: SessionDep, _: AdminDep) -> list[AccountPublic]:
    """Users and organizations."""
    return [account_public(a) for a in admin.all_accounts(session)]


@router.post("/users", response_model=AccountPublic, status_code=201)
def create_user(body: UserCreate, session: SessionDep, _: AdminDep) -> AccountPublic:
    """Create a user; without a password, they log in to the web UI with a write token."""
    account = admin.create_user(
        session, body.name, fullname=body.fullname, email=body.email, is_admin=body.is_admin
    )
    return account_public(account)


@router.post("/users/{name}/disable", response_model=AccountPublic)
def disable_user(name: str, session: SessionDep, principal: AdminDep) -> AccountPublic:
    """Disable a user: their tokens stop working and their browser sessions end, at once."""
    return account_public(admin.set_disabled(session, principal.account, name, True))


@router.post("/users/{name}/enable", response_model=AccountPublic)
def enable_user(name: str, session: SessionDep, principal: AdminDep) -> AccountPublic:
    """Let a disabled user back in (with tokens and a new login)."""
    return account_public(admin.set_disabled(session, principal.account, name, False))


@router.post("/orgs", response_model=AccountPublic, status_code=201)
def create_org(body: OrgCreate, session: SessionDep, _: AdminDep) -> AccountPublic:
    """Create an organization."""
    return account_public(admin.create_org(session, body.name, body.fullname))


@router.post("/orgs/{org}/members", status_code=204)
def add_member(org: str, body: MemberAdd, session: SessionDep, _: AdminDep) -> None:
    """Add a user to an organization (or change their role): `write` lets them own spaces there."""
    admin.add_member(session, org, body.user, body.role)


@router.delete("/orgs/{org}/members/{user}", status_code=204)
def remove_member(org: str, user: str, session: SessionDep, _: AdminDep) -> None:
    """End a user's membership of an organization."""
    admin.remove_member(session, org, user)


class AllocationPublic(BaseModel):
    space: str | None
    flavor: str
    tier: str = Field(description="serving, frozen, checkpointed or sleeping; empty for a starting job.")
    cpu: float = Field(description="vCPUs requested: what placement counts.")
    memory: int = Field(
        description="Bytes placement counts: the request, or the real use where that is more."
    )
    cpu_limit: float
    memory_limit: int
    cpu_used: float = Field(description="Cores the app really used since the host's previous heartbeat.")
    memory_used: int = Field(description="Bytes the app really uses (without the page cache).")
    gpus: list[str]


class HostPublic(BaseModel):
    host: str
    online: bool
    last_seen: float | None
    flavors: list[str]
    driver: str | None
    cpus: float = Field(description="vCPUs the host offers to requests.")
    memory: int = Field(description="Bytes the host offers to requests.")
    gpus: list[str]
    gpu_model: str
    used_cpu: float = Field(description="vCPUs requested by its apps.")
    used_memory: int = Field(description="Bytes placement counts as taken.")
    real_memory: int = Field(description="Bytes its apps really use.")
    memory_available: int = Field(description="The host's real free memory (MemAvailable, cgroup limits).")
    used_gpus: list[str]
    tiers: dict[str, int] = Field(description="How many of its spaces are serving, frozen, sleeping...")
    allocations: list[AllocationPublic]
    disk: dict[str, int]


def host_public(view: HostView) -> HostPublic:
    """A host as the admin API shows it: capacity, use and allocations when online, blanks otherwise."""
    record = view.record
    if record is None:
        return HostPublic(
            host=view.host,
            online=False,
            last_seen=None,
            flavors=[],
            driver=None,
            cpus=0,
            memory=0,
            gpus=[],
            gpu_model="",
            used_cpu=0,
            used_memory=0,
            real_memory=0,
            memory_available=0,
            used_gpus=[],
            tiers={},
            allocations=[],
            disk={},
        )
    return HostPublic(
        host=view.host,
        online=True,
        last_seen=record.last_seen,
        flavors=record.flavors,
        driver=record.driver,
        cpus=record.cpus,
        memory=record.memory,
        gpus=record.gpus,
        gpu_model=record.gpu_model,
        used_cpu=record.used_cpu,
        used_memory=record.used_memory,
        real_memory=record.real_memory,
        memory_available=record.memory_available,
        used_gpus=record.used_gpus,
        tiers=record.tiers,
        allocations=[
            AllocationPublic(
                space=app.space,
                flavor=a.flavor,
                tier=a.tier,
                cpu=a.cpu,
                memory=a.counted_memory,
                cpu_limit=a.cpu_limit,
                memory_limit=a.memory_limit,
                cpu_used=a.cpu_used,
                memory_used=a.memory_used,
                gpus=a.gpus,
            )
            for app in view.apps
            if (a := app.allocation)
        ],
        disk=record.disk,
    )


@router.get("/hosts", response_model=list[HostPublic])
def list_hosts(ctx: CtxDep, session: SessionDep, _: AdminDep) -> list[HostPublic]:
    """Every host that ever reported: capacity, requests, limits and real use of its apps, tiers,
    heartbeat, disk use."""
    return [host_public(view) for view in host_views(ctx, space_names(session))]


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(session: SessionDep, _: AdminDep) -> list[TokenPublic]:
    """Every token of every user, revoked ones included, without their secrets."""
    return [token_public(t) for t in admin.all_tokens(session)]


@router.post("/users/{name}/tokens", response_model=TokenCreated, status_code=201)
def create_token(name: str, body: TokenCreate, session: SessionDep, _: AdminDep) -> TokenCreated:
    """Issue a token for a user. Its value is in this response only; spacehub keeps a digest."""
    token, plaintext = admin.issue_token_for(session, name, body.name, body.role)
    return TokenCreated(**token_public(token).model_dump(), token=plaintext)


@router.delete("/tokens/{token_id}", response_model=TokenPublic)
def delete_token(token_id: int, session: SessionDep, _: AdminDep) -> TokenPublic:
    """Revoke a token; it stops working at once."""
    return token_public(revoke_token(session, token_id))


class QueuePublic(BaseModel):
    flavor: str
    workers: int
    waiting: int
    running: list[dict[str, str | None]]
    failed: list[dict[str, str]]


@router.get("/queues", response_model=list[QueuePublic])
def list_queues(ctx: CtxDep, _: AdminDep) -> list[QueuePublic]:
    """Every flavor's queue as RQ's registries describe it: workers, waiting, running and failed jobs."""
    return [QueuePublic(**asdict(view)) for view in queue_views(ctx)]


@router.post("/queues/{flavor}/jobs/{job_id}/retry", status_code=204)
def retry_job(flavor: str, job_id: str, ctx: CtxDep, _: AdminDep) -> None:
    """Queue a failed job again."""
    retry_failed_job(ctx, flavor, job_id)


SPACE_ACTIONS: dict[str, Callable[[ControllerContext, Session, Space], object]] = {
    "stop": pause,
    "restart": restart,
    "move": move,
}


@router.post("/spaces/{owner}/{name}/{action}", status_code=204)
def space_action(
    owner: str,
    name: str,
    action: Literal["stop", "restart", "move"],
    ctx: CtxDep,
    session: SessionDep,
    _: AdminDep,
) -> None:
    """Stop (pause) any space, restart it, or move it to another host of its flavor (it serves from
    its old host until the new one is healthy)."""
    repo = find_repo(session, RepoType.SPACE, owner, name)
    if repo is None or repo.space is None:
        raise NotFound(f"no space {owner}/{name}")
    SPACE_ACTIONS[action](ctx, session, repo.space)
