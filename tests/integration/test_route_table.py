"""The route table follows the database: written once a transaction commits (never ahead of it),
and repaired by the reconciler when its content differs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from spacehub.config import Settings
from spacehub.controller.accounts import Principal, create_account
from spacehub.controller.context import ControllerContext
from spacehub.controller.reconciler import republish_spaces
from spacehub.controller.repos import create_repo
from spacehub.controller.spaces import set_stage
from spacehub.db.migrate import upgrade
from spacehub.db.models import RepoType, Space, TokenRole
from spacehub.stages import Stage


@pytest.fixture
def ctx(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[ControllerContext]:
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        database_url=database_url,
        internal_token="internal-test",
        namespace="rt" + secrets.token_hex(3),
    )
    upgrade(settings.resolved_database_url)
    context = ControllerContext.from_settings(settings)
    yield context
    context.redis.close()


@pytest.fixture
def space_id(ctx: ControllerContext) -> int:
    with ctx.session() as session:
        owner = create_account(session, "ada")
        principal = Principal(account=owner, role=TokenRole.WRITE)
        repo = create_repo(
            session, ctx.settings, principal, type=RepoType.SPACE, owner=None, name="demo", private=False,
            sdk="gradio", hardware="cpu-basic",
        )  # fmt: skip
        assert repo.space is not None
        set_stage(ctx, repo.space, Stage.BUILDING, "Queued")
        return repo.id


def stage_in_redis(ctx: ControllerContext, client: redis.Redis) -> str:
    return client.hget(ctx.keys.space("ada-demo"), "stage").decode()


def test_a_rolled_back_change_leaves_the_route_table_as_it_was(
    ctx: ControllerContext, space_id: int, redis_client: redis.Redis
) -> None:
    assert stage_in_redis(ctx, redis_client) == "BUILDING"
    with pytest.raises(RuntimeError), ctx.session() as session:
        space = session.get(Space, space_id)
        assert space is not None
        set_stage(ctx, space, Stage.RUNTIME_ERROR, "never committed")
        session.flush()
        raise RuntimeError("the transaction fails after the change")
    assert stage_in_redis(ctx, redis_client) == "BUILDING"

    with ctx.session() as session:
        space = session.get(Space, space_id)
        assert space is not None
        set_stage(ctx, space, Stage.RUNNING)
        assert stage_in_redis(ctx, redis_client) == "BUILDING"  # not before the commit
    assert stage_in_redis(ctx, redis_client) == "RUNNING"


def test_the_reconciler_repairs_what_differs_and_drops_what_is_gone(
    ctx: ControllerContext, space_id: int, redis_client: redis.Redis
) -> None:
    key = ctx.keys.space("ada-demo")
    redis_client.hset(key, mapping={"stage": "RUNNING", "private": "1", "upstream": "10.0.0.9:7860"})
    redis_client.sadd(ctx.keys.spaces, "ghost-space")
    redis_client.hset(ctx.keys.space("ghost-space"), mapping={"id": "999", "stage": "RUNNING"})

    republish_spaces(ctx)

    record = ctx.routes.get("ada-demo")
    assert record is not None
    assert (record.stage, record.private) == (Stage.BUILDING, False)  # the database's word
    assert record.upstream == "10.0.0.9:7860"  # the agents' fields are theirs
    assert ctx.routes.get("ghost-space") is None and "ghost-space" not in ctx.routes.subdomains()
