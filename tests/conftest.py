"""Fixtures shared by the whole suite: a real Redis, and a real platform (controller, proxy,
agent) on free ports. Logs of every platform process are kept in test-artifacts/ on failure."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.utils.database import BACKEND, PostgresServer
from tests.utils.platform import Platform
from tests.utils.redis_server import RedisServer

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        item.session.config._spacehub_failed = True  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the session's own, on a unix socket (SPACEHUB_TEST_REDIS_URL overrides)."""
    if url := os.environ.get("SPACEHUB_TEST_REDIS_URL"):
        yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    """The session's PostgreSQL server when the suite runs on PostgreSQL, else None."""
    if BACKEND != "postgresql":
        yield None
        return
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def database_url(tmp_path: Path, postgres: PostgresServer | None) -> str:
    """A new, empty database on the suite's backend."""
    if postgres is None:
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return postgres.create_database("t" + secrets.token_hex(6))


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _start_platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    name: str,
    **options: object,
) -> Iterator[Platform]:
    postgres = request.getfixturevalue("postgres")
    platform = Platform(
        data_dir=tmp_path_factory.mktemp(name) / "data",
        redis_url=redis_url,
        database=postgres,
        **options,  # type: ignore[arg-type]
    )
    try:
        platform.start()
        yield platform
    finally:
        if getattr(request.config, "_spacehub_failed", False):
            platform.save_artifacts(ARTIFACTS / f"{name}-{platform.namespace}")
        platform.stop()


@pytest.fixture(scope="session")
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Platform]:
    """The whole platform, with an agent serving cpu-basic on this machine's Docker engine."""
    yield from _start_platform(request, tmp_path_factory, redis_url, "platform")


@pytest.fixture
def space_name() -> str:
    return "s-" + secrets.token_hex(4)


@dataclass
class User:
    name: str
    token: str
    read_token: str


@pytest.fixture
def make_user(platform: Platform):
    def make(name: str | None = None) -> User:
        name = name or "u" + secrets.token_hex(4)
        with platform.client() as client:
            client.post("/api/admin/users", json={"name": name}).raise_for_status()
            write = client.post(f"/api/admin/users/{name}/tokens", json={"name": "w", "role": "write"})
            read = client.post(f"/api/admin/users/{name}/tokens", json={"name": "r", "role": "read"})
        return User(name, write.json()["token"], read.json()["token"])

    return make
