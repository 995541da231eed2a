"""Edge proxy throughput, latency and memory, against nginx as a reverse proxy in the same run.

Both proxies forward to the same upstream (nginx answering a fixed 1 KiB body) over HTTP/1.1
keep-alive, with response buffering off; wrk drives each for the same time and concurrency. Also
measures the time to the first event of a server-sent-event stream through each proxy.

Run: make bench   (installs nginx and wrk if missing)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx
import redis

from spacehub.stages import Stage
from spacehub.state.keys import Keys
from spacehub.state.routes import RouteTable

DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
NAMESPACE = "bench"
SUBDOMAIN = "bench-app"


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with closing(socket.socket()) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def nginx_config(directory: Path, listen: int, body: str) -> Path:
    path = directory / f"nginx-{listen}.conf"
    path.write_text(f"""
worker_processes 1; daemon off; pid {directory}/nginx-{listen}.pid; error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {directory}; proxy_temp_path {directory}; fastcgi_temp_path {directory};
  uwsgi_temp_path {directory}; scgi_temp_path {directory};
  {body}
}}
""")
    return path


def upstream_body(port: int) -> str:
    payload = "x" * 1024
    return f"""server {{ listen 127.0.0.1:{port};
      location /sse {{ default_type text/event-stream; return 200 "data: hello\\n\\n"; }}
      location / {{ default_type text/plain; return 200 "{payload}"; }} }}"""


def proxy_body(port: int, upstream: int) -> str:
    return f"""upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{ listen 127.0.0.1:{port};
      location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
                   proxy_set_header Host $http_host; proxy_buffering off; }} }}"""


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children, in KiB."""
    total = 0
    for candidate in [pid, *children(pid)]:
        status = Path(f"/proc/{candidate}/status")
        if status.exists():
            match = re.search(r"VmRSS:\s+(\d+)", status.read_text())
            total += int(match.group(1)) if match else 0
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def wrk(url: str, host: str) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-H", f"Host: {host}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latencies = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": to_ms(latencies["50"]),
        "p99_ms": to_ms(latencies["99"]),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def first_event_ms(url: str, host: str) -> float:
    samples = []
    with httpx.Client(trust_env=False) as client:
        for _ in range(20):
            started = time.perf_counter()
            with client.stream("GET", url, headers={"Host": host}) as response:
                next(response.iter_lines())
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return samples[len(samples) // 2]


def main() -> int:
    for tool in ("nginx", "wrk", "redis-server"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing (make bench installs it)", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="spacehub-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        socket_path = work / "redis.sock"
        processes.append(
            subprocess.Popen(
                ["redis-server", "--port", "0", "--unixsocket", str(socket_path), "--save", ""],
                stdout=subprocess.DEVNULL,
            )
        )
        upstream_port, nginx_port, spacehub_port = free_port(), free_port(), free_port()
        processes.append(
            subprocess.Popen(
                ["nginx", "-c", str(nginx_config(work, upstream_port, upstream_body(upstream_port)))]
            )
        )
        nginx = subprocess.Popen(
            ["nginx", "-c", str(nginx_config(work, nginx_port, proxy_body(nginx_port, upstream_port)))]
        )
        processes.append(nginx)
        time.sleep(0.5)
        client = redis.Redis(unix_socket_path=str(socket_path))
        routes = RouteTable(client, Keys(NAMESPACE))
        routes.publish_space(
            SUBDOMAIN, id=1, name="bench/app", stage=Stage.RUNNING, private=False, sdk="docker"
        )
        routes.add_route(SUBDOMAIN, f"127.0.0.1:{upstream_port}", 1, "bench")
        env = {
            **os.environ,
            "SPACEHUB_DATA_DIR": str(work),
            "SPACEHUB_PORT": str(spacehub_port),
            "SPACEHUB_REDIS_URL": f"unix://{socket_path}",
            "SPACEHUB_NAMESPACE": NAMESPACE,
            "SPACEHUB_LISTEN_HOSTS": '["127.0.0.1"]',
            "SPACEHUB_INTERNAL_TOKEN": "bench",
        }
        ours = subprocess.Popen(
            [sys.executable, "-m", "spacehub.cli", "proxy"], env=env, stderr=subprocess.DEVNULL
        )
        processes.append(ours)
        for port in (upstream_port, nginx_port, spacehub_port):
            wait_port(port)
        time.sleep(0.5)
        host = f"{SUBDOMAIN}.localhost"
        rows = [
            ("direct (no proxy)", f"http://127.0.0.1:{upstream_port}/", None),
            ("nginx proxy", f"http://127.0.0.1:{nginx_port}/", nginx.pid),
            ("spacehub proxy", f"http://127.0.0.1:{spacehub_port}/", ours.pid),
        ]
        print(
            f"edge proxy benchmark: wrk, {CONNECTIONS} connections, {DURATION} s each, 1 KiB responses, "
            f"{os.cpu_count()} CPUs shared by all processes\n"
        )
        print(
            f"{'target':<20}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'SSE first event ms':>20}"
            f"{'RSS MiB':>9}"
        )
        results = {}
        for name, url, pid in rows:
            measured = wrk(url, host)
            sse = first_event_ms(url + "sse", host)
            memory = rss_kib(pid) / 1024 if pid else 0.0
            results[name] = measured
            print(
                f"{name:<20}{measured['rps']:>10.0f}{measured['p50_ms']:>9.2f}{measured['p99_ms']:>9.2f}"
                f"{measured['errors']:>8.0f}{sse:>20.2f}{memory:>9.1f}"
            )
        ratio = results["spacehub proxy"]["rps"] / results["nginx proxy"]["rps"]
        print(f"\nspacehub proxy throughput is {ratio:.0%} of nginx's on this machine.")
        return 0
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
