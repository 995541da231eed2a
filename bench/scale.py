"""The hub's own pages and API at scale: a database of 10,000 spaces (a tenth private) of 1,000
users, seeded straight into the database, served by a real controller process; p50 and p95 of
sequential requests to the gallery, a search, the `/api/spaces` listing and a space's runtime, on
SQLite and on PostgreSQL. Targets (issue 12): p50 <= 50 ms for pages and listings, <= 10 ms for the
runtime. The peer figure is what the issue measured before: the gallery at 1.66 s p50 under 200
visitors with a handful of spaces.

    .venv/bin/python bench/scale.py [--spaces 10000] [--users 1000] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert
from tests.utils.database import PostgresServer
from tests.utils.platform import free_port_pair
from tests.utils.redis_server import RedisServer

from spacehub.db.migrate import upgrade
from spacehub.db.models import Account, Repo, RepoType, Space, utcnow
from spacehub.db.session import session_scope
from spacehub.stages import Stage

SDKS = ("gradio", "streamlit", "docker", "static")
WORDS = ("chat", "image", "audio", "vision", "llama", "whisper", "diffusion", "ocr", "translate", "demo")
TARGETS = {"runtime": 10.0}
DEFAULT_TARGET = 50.0


def seed(database_url: str, users: int, spaces: int) -> str:
    """Fill an empty database; the name of one public space."""
    upgrade(database_url)
    rng = random.Random(7)
    now = utcnow()
    with session_scope(database_url) as session:
        session.execute(
            insert(Account),
            [{"name": f"user{i}", "fullname": f"User {i}", "created_at": now} for i in range(users)],
        )
        owners = [row.id for row in session.query(Account.id)]
        repos = []
        for i in range(spaces):
            title = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}"
            repos.append(
                {
                    "type": RepoType.SPACE,
                    "owner_id": owners[i % len(owners)],
                    "name": f"space-{i}",
                    "private": i % 10 == 0,
                    "card": {"title": title, "sdk": SDKS[i % 4], "tags": [rng.choice(WORDS)]},
                    "likes": rng.randrange(0, 500),
                    "created_at": now - timedelta(minutes=i),
                    "updated_at": now - timedelta(minutes=rng.randrange(0, 100_000)),
                }
            )
        session.execute(insert(Repo), repos)
        ids = [row.id for row in session.query(Repo.id).order_by(Repo.id)]
        stages = (Stage.RUNNING, Stage.SLEEPING, Stage.SLEEPING, Stage.PAUSED)
        session.execute(
            insert(Space),
            [
                {
                    "repo_id": repo_id,
                    "sdk": SDKS[i % 4],
                    "subdomain": f"user{i % users}-space-{i}",
                    "stage": stages[i % 4],
                    "stage_changed_at": now,
                }
                for i, repo_id in enumerate(ids)
            ],
        )
    return "user1/space-1"


def measure(client: httpx.Client, path: str, requests: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds of `requests` sequential GETs of `path` (after 3 to warm up)."""
    for _ in range(3):
        client.get(path).raise_for_status()
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def run(backend: str, users: int, spaces: int, requests: int) -> list[tuple[str, str, float, float]]:
    """Seed a database on `backend`, start a controller on it, and measure each request."""
    work = Path(tempfile.mkdtemp(prefix="spacehub-scale-"))
    postgres = PostgresServer().start() if backend == "postgresql" else None
    redis_server = RedisServer(work).start()
    database_url = (
        postgres.create_database("scale") if postgres is not None else f"sqlite:///{work / 'spacehub.db'}"
    )
    started = time.perf_counter()
    public_space = seed(database_url, users, spaces)
    print(f"{backend}: seeded {users} users and {spaces} spaces in {time.perf_counter() - started:.1f} s")
    port = free_port_pair()
    admin_token = "shub_admin_" + secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEHUB_")}
    env.update(
        SPACEHUB_DATA_DIR=str(work),
        SPACEHUB_DATABASE_URL=database_url,
        SPACEHUB_REDIS_URL=redis_server.url,
        SPACEHUB_CONTROLLER_PORT=str(port + 1),
        SPACEHUB_ADMIN_TOKEN=admin_token,
        SPACEHUB_NAMESPACE="scale",
    )
    controller = subprocess.Popen(
        [sys.executable, "-m", "spacehub.cli", "controller"], env=env, stderr=subprocess.DEVNULL
    )
    rows = []
    try:
        base = f"http://127.0.0.1:{port + 1}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        paths = {
            "gallery": "/spaces",
            "gallery, page 50": "/spaces?page=50",
            "gallery search": "/spaces?q=whisper",
            "api listing": "/api/spaces?limit=20",
            "api search": "/api/spaces?search=llama&limit=20",
            "runtime": f"/api/spaces/{public_space}/runtime",
        }
        for signed_in in (False, True):
            headers = {"Authorization": f"Bearer {admin_token}"} if signed_in else {}
            with httpx.Client(base_url=base, headers=headers, timeout=60, trust_env=False) as client:
                for what, path in paths.items():
                    p50, p95 = measure(client, path, requests)
                    rows.append((backend, what + (" (admin)" if signed_in else ""), p50, p95))
    finally:
        controller.terminate()
        controller.wait()
        redis_server.stop()
        if postgres is not None:
            postgres.stop()
    return rows


def main() -> None:
    """Measure on the chosen backends and print one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spaces", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per measurement")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    rows = [row for backend in backends for row in run(backend, args.users, args.spaces, args.requests)]
    print(f"\n{args.spaces} spaces, {args.users} users; {args.requests} sequential requests each")
    print(f"{'backend':<11} {'request':<28} {'p50 ms':>8} {'p95 ms':>8} {'target':>7}")
    for backend, what, p50, p95 in rows:
        target = TARGETS.get(what.split(" (")[0], DEFAULT_TARGET)
        verdict = "ok" if p50 <= target else "MISSED"
        print(f"{backend:<11} {what:<28} {p50:>8.1f} {p95:>8.1f} {target:>5.0f} {verdict}")
    print("peer (issue 12, before): gallery p50 1,660 ms under 200 visitors with a handful of spaces")


if __name__ == "__main__":
    main()
