from __future__ import annotations

import pytest

# The test agent serves cpu-basic only: spaces on cpu-upgrade stay queued, which lets these tests
# look at what the controller does without a build running.
QUEUED_FLAVOR = "cpu-upgrade"


@pytest.fixture(scope="session")
def path_platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str):
    """A second installation, in path routing, with a small body limit, sign-ups closed and API
    requests to an app on its way held for 3 s only, without agent; its edge is the Python one
    alone (SPACEHUB_EDGE_DATA_PATH=python), so that both data paths stay tested."""
    from tests.conftest import _start_platform

    yield from _start_platform(
        request,
        tmp_path_factory,
        redis_url,
        "pathplatform",
        routing="path",
        with_agent=False,
        extra_env={
            "SPACEHUB_MAX_BODY_SIZE": str(10 * 1024 * 1024),
            "SPACEHUB_SIGNUP_ENABLED": "false",
            "SPACEHUB_WAKE_TIMEOUT": "3",
            "SPACEHUB_EDGE_DATA_PATH": "python",
        },
    )


@pytest.fixture(scope="session")
def upstream():
    from tests.utils.upstream import Upstream

    server = Upstream().start()
    yield server
    server.stop()
