"""Schemathesis against the hub's OpenAPI, with and without a token: generated requests (a fixed
seed, deterministic) must find no server error and no answer the schema does not describe."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _start_platform
from tests.utils.platform import Platform

EXAMPLES = os.environ.get("SPACEHUB_FUZZ_EXAMPLES", "25")  # more in a long run: bench-like
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Platform]:
    yield from _start_platform(request, tmp_path_factory, redis_url, "fuzzed", with_agent=False)


@pytest.mark.parametrize("with_token", [False, True], ids=["anonymous", "admin"])
def test_generated_requests_find_no_server_error_and_no_undocumented_answer(
    fuzzed: Platform, with_token: bool, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{fuzzed.url}/api/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        EXAMPLES,
        "--seed",
        "20261203",
        "--generation-deterministic",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    if with_token:
        command += ["-H", f"Authorization: Bearer {fuzzed.admin_token}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    failures = result.stdout[result.stdout.find("FAILURES") :]
    assert result.returncode == 0, failures[:8000] + result.stderr[-2000:]
