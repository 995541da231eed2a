"""The database session of a request commits before its response is sent."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from spacehub.application import create_app
from spacehub.config import Settings
from spacehub.db.migrate import upgrade
from spacehub.db.models import Account
from spacehub.http.deps import SessionDep


def test_a_commit_that_fails_answers_as_an_error(tmp_path: Path, redis_url: str, database_url: str) -> None:
    settings = Settings(
        data_dir=tmp_path, redis_url=redis_url, database_url=database_url, internal_token="internal-test"
    )
    upgrade(settings.resolved_database_url)
    app = create_app(settings, background=False)

    @app.post("/clash")
    def clash(session: SessionDep) -> dict[str, str]:
        # Two accounts of one name: the unique index refuses them when the session commits.
        session.add_all([Account(name="twin"), Account(name="twin")])
        return {"status": "saved"}

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post("/clash")
    assert answer.status_code == 500, answer.text
