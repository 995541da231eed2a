"""Many idle Gradio spaces on one host: memory per space, memory left, CPU spent by idle spaces, and
wake latency from each tier, beside the previous release's policy in the same run.

It starts the platform as `make up` does (`spacehub up`, embedded defaults, this machine's Docker
engine), creates N Gradio spaces and waits for all of them to run, then measures:
- real memory per app (its cgroup, without page cache) and the host's MemAvailable;
- CPU used by the apps once they are frozen, and by apps serving idle (the previous release:
  nothing froze them);
- the first byte of a request through the edge, from each tier: serving, frozen, sleeping (the host
  wakes its stopped container) and sleeping with its container gone (the previous release's wake:
  a job through the queue starts it again); checkpointed where CRIU works on this host;
- how many of these spaces the previous release admitted here (it reserved each flavor's limits).

Idle apps freeze after `freeze_after` (30 s here, so that the run ends in minutes; the product's
default is 5 minutes): the serving figure is measured on a sample woken from frozen, per app over a
window shorter than freeze_after, and multiplied by the number of spaces.

Run: PYTHONPATH=. .venv/bin/python bench/density.py   (BENCH_SPACES=150, BENCH_FREEZE_AFTER=30s,
BENCH_WAKES=20, BENCH_CPU_SECONDS=20)"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import docker
import httpx
from huggingface_hub import CommitOperationAdd, HfApi

from spacehub.agent.capacity import available_memory, physical_memory
from spacehub.agent.drivers.cgroups import container_usage
from spacehub.queue.flavors import DEFAULT_FLAVORS_FILE, load_flavors

SPACES = int(os.environ.get("BENCH_SPACES", "150"))
FREEZE_AFTER = os.environ.get("BENCH_FREEZE_AFTER", "30s")
WAKES = int(os.environ.get("BENCH_WAKES", "20"))
CPU_WINDOW = float(os.environ.get("BENCH_CPU_SECONDS", "20"))  # below freeze_after
PROBE = "/gradio_api/app_id"  # a cheap answer: the wake, not the app's work, is what is timed
APP = """import gradio as gr

gr.Interface(lambda text: text, "text", "text").launch()
"""
README = "---\ntitle: Density\nsdk: gradio\n---\n"


def say(text: str) -> None:
    print(text, flush=True)


def free_port_pair() -> int:
    while True:
        with closing(socket.socket()) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        with closing(socket.socket()) as probe:
            if probe.connect_ex(("127.0.0.1", port + 1)) != 0:
                return port


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def mib(value: float) -> str:
    return f"{value / 1024**2:,.0f} MiB"


class Bench:
    def __init__(self, work: Path):
        self.data_dir = work / "data"
        self.port = free_port_pair()
        self.token = "shub_bench_" + secrets.token_hex(12)
        self.url = f"http://127.0.0.1:{self.port}"
        flavors = work / "flavors.yaml"
        flavors.write_text(
            DEFAULT_FLAVORS_FILE.read_text().replace("freeze_after: 5m", f"freeze_after: {FREEZE_AFTER}")
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEHUB_")}
        env.update(
            SPACEHUB_DATA_DIR=str(self.data_dir),
            SPACEHUB_PORT=str(self.port),
            SPACEHUB_ADMIN_TOKEN=self.token,
            SPACEHUB_FLAVORS_FILE=str(flavors),
            SPACEHUB_LISTEN_HOSTS='["127.0.0.1"]',
        )
        self.log = (work / "up.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spacehub.cli", "up", "--no-demo"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60, trust_env=False
        )
        self.api = HfApi(endpoint=self.url, token=self.token)
        # One client for every timed request (making one costs tens of ms, its TLS context alone),
        # with a new connection each time, as a visitor's first request has.
        self.probe = httpx.Client(
            timeout=httpx.Timeout(10, read=600),
            limits=httpx.Limits(max_keepalive_connections=0),
            trust_env=False,
        )
        self.docker = docker.from_env()

    def stop(self) -> None:
        """Stop the platform and remove its apps (`spacehub up` leaves them running on purpose)."""
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)
        for container in self.containers(all=True):
            container.remove(force=True)

    def ready(self) -> bool:
        try:
            response = self.http.get("/api/admin/hosts")
            return response.status_code == 200 and any(host["online"] for host in response.json())
        except (httpx.HTTPError, ValueError):
            return False

    def runtimes(self, spaces: list[str]) -> dict[str, dict[str, object]]:
        with ThreadPoolExecutor(8) as pool:
            answers = pool.map(lambda s: self.http.get(f"/api/spaces/{s}/runtime").json(), spaces)
            return dict(zip(spaces, answers, strict=True))

    def create(self, count: int) -> list[str]:
        spaces = []
        for index in range(count):
            name = f"density-{index}"
            self.http.post("/api/repos/create", json={"name": name, "type": "space", "sdk": "gradio"})
            self.api.create_commit(
                f"admin/{name}",
                [
                    CommitOperationAdd("README.md", README.encode()),
                    CommitOperationAdd("app.py", APP.encode()),
                ],
                commit_message="density",
                repo_type="space",
            )
            spaces.append(f"admin/{name}")
        return spaces

    def containers(self, all: bool = False) -> list[docker.models.containers.Container]:
        """This installation's app containers (running or frozen; with `all`, stopped ones too)."""
        instance = (self.data_dir / "instance-id").read_text().strip()
        return self.docker.containers.list(all=all, filters={"label": f"spacehub.instance={instance}"})

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each app container has used, by container id."""
        return {c.id: u.cpu_seconds for c in self.containers() if (u := container_usage(c.id)) is not None}

    def serving(self) -> set[str]:
        """Ids of the app containers that run unfrozen now."""
        return {c.id for c in self.containers() if c.status == "running"}

    def first_byte(self, space: str) -> float:
        """Seconds to the first byte of an API request (held while the app wakes) through the edge."""
        app = urlsplit(self.http.get(f"/api/spaces/{space}").json()["host"])
        started = time.perf_counter()
        with self.probe.stream(
            "GET",
            f"http://127.0.0.1:{self.port}{PROBE}",  # as the app's host, without resolving it
            headers={"Accept": "application/json", "Host": app.netloc},
        ) as response:
            next(response.iter_raw())
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise SystemExit(f"{space} answered {response.status_code}")
        return elapsed

    def direct_first_byte(self, space: str) -> float:
        """Seconds to the first byte of the same request straight to the app's container (no edge)."""
        subdomain = self.http.get(f"/api/spaces/{space}").json()["subdomain"]
        (container,) = self.docker.containers.list(filters={"label": f"spacehub.subdomain={subdomain}"})
        address = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        started = time.perf_counter()
        with self.probe.stream("GET", f"http://{address}:7860{PROBE}") as response:
            next(response.iter_raw())
            return time.perf_counter() - started


def wake_figures(label: str, samples: list[float], target: str) -> None:
    say(
        f"  {label:<44} p50 {1000 * statistics.median(samples):8.1f} ms   p99 "
        f"{1000 * percentile(samples, 0.99):8.1f} ms   ({len(samples)} wakes; target {target})"
    )


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the platform on the way out
    work = Path(tempfile.mkdtemp(prefix="spacehub-density-"))
    bench = Bench(work)
    try:
        run(bench)
    finally:
        bench.stop()
        say(f"(platform log: {work / 'up.log'})")


def run(bench: Bench) -> None:
    say(f"== {SPACES} idle Gradio spaces on one host, `spacehub up` defaults (freeze_after {FREEZE_AFTER})")
    wait_for(bench.ready, 900, "the platform and its agent (first start prepares base images)")
    free_before = available_memory()
    started = time.monotonic()
    spaces = bench.create(SPACES)
    wait_for(
        lambda: all(r["stage"] in ("RUNNING", "SLEEPING") for r in bench.runtimes(spaces).values()),
        60 * SPACES,
        "every space to run (or to be put to sleep to make room for the others)",
    )
    running = [s for s, r in bench.runtimes(spaces).items() if r["stage"] == "RUNNING"]
    say(
        f"{len(running)} running, {SPACES - len(running)} put to sleep to make room, after "
        f"{time.monotonic() - started:.0f} s"
    )

    memory = [u.memory for c in bench.containers() if (u := container_usage(c.id)) is not None]
    wait_for(
        lambda: all(r.get("tier") == "frozen" for r in bench.runtimes(running).values()),
        600,
        "every running space to freeze",
    )
    free_after = available_memory()
    frozen_cpu = sum(cpu_over_window(bench).values())

    # Wake a sample from frozen, then measure them serving idle (the previous release never froze
    # them) before freeze_after puts them back, then ask them again, awake.
    sample = random.sample(running, min(WAKES, len(running)))
    frozen = [bench.first_byte(space) for space in sample]
    serving_per_app, serving_apps = serving_cpu_per_app(bench)
    serving = [bench.first_byte(space) for space in sample]
    direct = [bench.direct_first_byte(space) for space in sample]

    flavor = load_flavors()["cpu-basic"]
    cores = os.cpu_count() or 1
    previous = min(int(4 * cores // flavor.cpu), int(2 * physical_memory() // flavor.memory_bytes))
    say("== capacity")
    say(f"  spaces running now                          {len(running)} of {SPACES}")
    say(
        f"  the previous release admitted               {previous} "
        f"(it reserved {flavor.cpu:g} vCPU and {flavor.memory} per space "
        f"on {4 * cores} vCPU, {mib(2 * physical_memory())})"
    )
    say("== memory")
    say(
        f"  real memory per app                         p50 {mib(statistics.median(memory))}, "
        f"max {mib(max(memory))}"
    )
    say(f"  host memory available before / after        {mib(free_before)} / {mib(free_after)}")
    say(f"  host memory taken per space (all included)  {mib((free_before - free_after) / len(running))}")
    say(f"== CPU of the idle apps, over {CPU_WINDOW:g} s")
    say(f"  all {len(running)} frozen{'':30}{100 * frozen_cpu:.2f} % of a core (target < 1 %)")
    say(
        f"  serving, per app                            {100 * serving_per_app:.2f} % of a core "
        f"(mean of {serving_apps} woken apps that served the whole window)"
    )
    say(
        f"  all {len(running)} serving (previous release: never frozen) "
        f"{100 * serving_per_app * len(running):.0f} % of a core"
    )

    say(f"== wake: first byte of a held request ({PROBE}) through the edge")
    wake_figures("serving, straight to the app (no edge)", direct, "-")
    wake_figures("serving (no wake)", serving, "-")
    wake_figures("frozen", frozen, "p50 <= 50 ms")
    say("  checkpointed                                not available: see README, 'Idle tiers' (CRIU)")
    wait_for(  # a mostly idle host again, as before the sample was woken
        lambda: all(r.get("tier") == "frozen" for r in bench.runtimes(running).values()),
        600,
        "the woken spaces to freeze again",
    )
    asleep = sample[: max(1, WAKES // 4)]
    sleeping = [sleep_then_wake(bench, space) for space in asleep]
    wake_figures("sleeping (its host starts the container)", sleeping, "p50 <= 3 s")
    gone = [sleep_then_wake(bench, space, remove_container=True) for space in asleep]
    wake_figures("sleeping, previous release (a queued job)", gone, "-")


def cpu_over_window(bench: Bench) -> dict[str, float]:
    """Cores each app container used over CPU_WINDOW seconds, by container id."""
    before = bench.cpu_seconds()
    time.sleep(CPU_WINDOW)
    after = bench.cpu_seconds()
    return {cid: (after[cid] - before[cid]) / CPU_WINDOW for cid in before.keys() & after.keys()}


def serving_cpu_per_app(bench: Bench) -> tuple[float, int]:
    """Mean cores of one idle serving app, over the apps that served through the whole window;
    and how many those were."""
    at_start = bench.serving()
    used = cpu_over_window(bench)
    throughout = at_start & bench.serving() & used.keys()
    if not throughout:
        raise SystemExit("no app served through the whole window: raise BENCH_FREEZE_AFTER")
    return statistics.mean(used[cid] for cid in throughout), len(throughout)


def sleep_then_wake(bench: Bench, space: str, remove_container: bool = False) -> float:
    bench.http.post(f"/api/spaces/{space}/sleeptime", json={"seconds": 1})
    wait_for(lambda: bench.runtimes([space])[space]["stage"] == "SLEEPING", 120, f"{space} to sleep")
    bench.http.post(f"/api/spaces/{space}/sleeptime", json={"seconds": -1})
    if remove_container:
        subdomain = bench.http.get(f"/api/spaces/{space}").json()["subdomain"]
        for container in bench.docker.containers.list(
            all=True, filters={"label": f"spacehub.subdomain={subdomain}"}
        ):
            container.remove(force=True)
    return bench.first_byte(space)


if __name__ == "__main__":
    main()
