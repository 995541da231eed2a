"""The inference provider's cost: `spacehub up`, a tiny text-classification model made here and
pushed, then (1) warm calls through the hub (`/hf-inference/models/{id}`: the edge, the hub, and
the model server, which the hub calls straight while it runs)
against the peer, the same pipeline on the same files called in-process, and the server's own
container called directly; (2) cold calls, each on a server put to sleep first (scaled to zero).
Targets (issue 14): warm adds at most 5 ms over in-process; cold answers within 10 s.

    PYTHONPATH=. .venv/bin/python bench/inference.py
"""

from __future__ import annotations

import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import docker
import httpx
from huggingface_hub import HfApi
from tests.utils.platform import free_port_pair
from tests.utils.tiny_models import make
from transformers import pipeline

WARM_CALLS = 200
COLD_CALLS = 3
TEXT = "good movie"


def start(data_dir: Path, port: int, token: str) -> subprocess.Popen[str]:
    """`spacehub up` in `data_dir`, returned once its demo runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEHUB_")}
    env.update(
        SPACEHUB_DATA_DIR=str(data_dir),
        SPACEHUB_PORT=str(port),
        SPACEHUB_NAMESPACE="inferencebench",
        SPACEHUB_ADMIN_TOKEN=token,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "spacehub.cli", "up"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if re.search(r"ready: the demo app is at", line):
            threading.Thread(target=drain, args=(process.stdout,), daemon=True).start()
            return process
    raise SystemExit("spacehub up ended before its demo ran")


def drain(stream: IO[str]) -> None:
    """Read what the launcher prints, so that it never blocks on a full pipe."""
    for _line in stream:
        pass


def container_address(subdomain: str) -> str:
    """The address of the container that serves `subdomain`, on its Docker network."""
    (container,) = docker.from_env().containers.list(filters={"label": f"spacehub.subdomain={subdomain}"})
    return next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):7.2f} ms   p99 {p99:7.2f} ms"


def main() -> None:
    port = free_port_pair()
    token = secrets.token_urlsafe(24)
    hub = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="spacehub-inference-bench-") as tmp:
        process = start(Path(tmp) / "data", port, token)
        try:
            api = HfApi(endpoint=hub, token=token)
            folder = make("text-classification", Path(tmp) / "model")
            repo = api.create_repo(f"admin/bench-{secrets.token_hex(3)}").repo_id
            api.upload_folder(folder_path=folder, repo_id=repo)
            url = f"{hub}/hf-inference/models/{repo}"
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(trust_env=False, timeout=600, headers=headers) as client:
                first = time.monotonic()
                while client.post(url, json={"inputs": TEXT}).status_code == 503:
                    time.sleep(1)
                print(f"first call answered after {time.monotonic() - first:.0f} s (build included)")

                local = pipeline("text-classification", model=str(folder))
                in_process = [timed(lambda: local(TEXT, top_k=None)) for _ in range(WARM_CALLS)]
                hubbed = [timed(lambda: client.post(url, json={"inputs": TEXT})) for _ in range(WARM_CALLS)]
                server = next(s.id for s in api.list_spaces(author="hf-inference"))
                target = f"http://{container_address(api.space_info(server).subdomain)}:7860/"
                direct = [
                    timed(lambda: client.post(target, json={"inputs": TEXT})) for _ in range(WARM_CALLS)
                ]

                cold = []
                api.set_space_sleep_time(server, 5)
                for _ in range(COLD_CALLS):
                    while api.get_space_runtime(server).stage != "SLEEPING":
                        time.sleep(1)
                    cold.append(timed(lambda: client.post(url, json={"inputs": TEXT})) / 1000)
        finally:
            process.terminate()
            process.wait(timeout=60)

    print(f"\nwarm text-classification calls on a tiny model, {WARM_CALLS} each, one at a time")
    print(f"  peer: the same pipeline in-process   {summary(in_process)}")
    print(f"  the model server, straight           {summary(direct)}")
    print(f"  through the hub (/hf-inference)      {summary(hubbed)}")
    added = statistics.median(hubbed) - statistics.median(in_process)
    print(
        f"  added over in-process (p50): {added:.2f} ms (target <= 5 ms: {'met' if added <= 5 else 'MISSED'})"
    )
    print(f"\ncold calls (server asleep, scaled to zero): {', '.join(f'{c:.1f} s' for c in cold)}")
    print(f"  worst {max(cold):.1f} s (target <= 10 s: {'met' if max(cold) <= 10 else 'MISSED'})")


if __name__ == "__main__":
    main()
