"""A commit of a 200 MB file streams through the controller: it never holds the body in memory."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
from huggingface_hub import HfApi

from tests.utils.platform import Platform

SIZE = 200 * 1024 * 1024
BLOCK = bytes(range(256)) * 3 * 4096  # 3 MiB, a multiple of 3: base64 chunks join cleanly


def peak_memory_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def payload():
    yield json.dumps({"key": "header", "value": {"summary": "A big file"}}).encode() + b"\n"
    yield b'{"key": "file", "value": {"content": "'
    sent = 0
    while sent < SIZE:
        chunk = BLOCK[: SIZE - sent]
        sent += len(chunk)
        yield base64.b64encode(chunk)
    yield b'", "path": "weights/big.bin", "encoding": "base64"}}\n'


def test_a_200_mb_commit_streams(platform: Platform, space_name: str) -> None:
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    repo = f"admin/{space_name}"
    api.create_repo(repo)
    controller = platform.processes["controller"].pid
    before = peak_memory_kib(controller)
    response = httpx.post(
        f"{platform.url}/api/models/{repo}/commit/main",
        content=payload(),
        trust_env=False,
        timeout=600,
        headers={"Authorization": f"Bearer {platform.admin_token}", "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    growth_mib = (peak_memory_kib(controller) - before) / 1024
    assert growth_mib < 64, f"the controller's peak memory grew by {growth_mib:.0f} MiB"

    expected = hashlib.sha256()
    sent = 0
    while sent < SIZE:
        chunk = BLOCK[: SIZE - sent]
        sent += len(chunk)
        expected.update(chunk)
    received = hashlib.sha256()
    with httpx.stream(
        "GET", f"{platform.url}/{repo}/resolve/main/weights/big.bin", trust_env=False, timeout=600
    ) as download:
        assert download.headers["content-length"] == str(SIZE)
        for chunk in download.iter_bytes(1 << 20):
            received.update(chunk)
    assert received.hexdigest() == expected.hexdigest()
