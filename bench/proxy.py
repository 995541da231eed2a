"""The edge against its peers, in one run: spacehub's edge (HAProxy with the Python activator
behind it), nginx as a reverse proxy, and configurable-http-proxy (JupyterHub's), each in front of
the same upstreams, beside the upstreams reached directly.

- HTTP: wrk for BENCH_SECONDS at 32 connections and at 1, against nginx answering 1 KiB.
- SSE: events per second read from one endless stream of 100-byte events (a Node upstream).
- WebSocket: echoed messages per second over 32 connections with 8 messages in flight each.
- Memory: the proxy's resident memory (with its children) before and with BENCH_IDLE_WEBSOCKETS
  idle WebSockets open through it (default 10,000, or as many as this machine's open-file
  limit lets a proxy hold: each one costs a proxy two descriptors).

Run: make bench   (installs nginx, wrk, HAProxy and the Node packages if missing)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import redis

from spacehub.stages import Stage
from spacehub.state.keys import Keys
from spacehub.state.routes import RouteTable, SpaceFacts

DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
NODE = Path(__file__).resolve().parent / "node"
NAMESPACE = "bench"
HTTP_HOST, STREAM_HOST = "bench-http.localhost", "bench-stream.localhost"


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with closing(socket.socket()) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def nginx_config(directory: Path, name: str, body: str) -> Path:
    path = directory / f"nginx-{name}.conf"
    path.write_text(f"""
worker_processes 1; daemon off; pid {directory}/nginx-{name}.pid; error_log stderr warn;
worker_rlimit_nofile 40000;
events {{ worker_connections 30000; }}
http {{
  access_log off;
  client_body_temp_path {directory}; proxy_temp_path {directory}; fastcgi_temp_path {directory};
  uwsgi_temp_path {directory}; scgi_temp_path {directory};
  {body}
}}
""")
    return path


def nginx_upstream(port: int) -> str:
    return f"""server {{ listen 127.0.0.1:{port};
      location / {{ default_type text/plain; return 200 "{"x" * 1024}"; }} }}"""


def nginx_proxy(port: int, http_upstream: int, stream_upstream: int) -> str:
    """nginx as one would deploy it in front of apps: keep-alive upstreams, no buffering, WebSockets."""
    location = """proxy_http_version 1.1; proxy_set_header Host $http_host; proxy_buffering off;
                  proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;
                  proxy_read_timeout 1d;"""
    return f"""map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream http_app {{ server 127.0.0.1:{http_upstream}; keepalive 64; }}
    upstream stream_app {{ server 127.0.0.1:{stream_upstream}; keepalive 64; }}
    server {{ listen 127.0.0.1:{port}; server_name {HTTP_HOST};
      location / {{ proxy_pass http://http_app; {location} }} }}
    server {{ listen 127.0.0.1:{port}; server_name {STREAM_HOST};
      location / {{ proxy_pass http://stream_app; {location} }} }}"""


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its descendants, in KiB."""
    total = 0
    for candidate in [pid, *descendants(pid)]:
        status = Path(f"/proc/{candidate}/status")
        if status.exists():
            match = re.search(r"VmRSS:\s+(\d+)", status.read_text())
            total += int(match.group(1)) if match else 0
    return total


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    children = [int(p) for p in out]
    return children + [d for child in children for d in descendants(child)]


def wrk(url: str, host: str, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{DURATION}s", "--latency", "-H", f"Host: {host}", url],
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


def node_load(*args: str, timeout: float) -> float:
    out = subprocess.run(
        ["node", str(NODE / "load.js"), *args], capture_output=True, text=True, timeout=timeout, check=True
    ).stdout
    return float(json.loads(out.splitlines()[-1])["per_second"])


def idle_websockets(url: str, count: int) -> subprocess.Popen[str]:
    """A Node process holding `count` idle WebSockets open to `url` (once it has said so)."""
    holder = subprocess.Popen(
        ["node", str(NODE / "load.js"), "idle", url, STREAM_HOST, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if not line.startswith("open"):
        holder.kill()
        raise RuntimeError(f"could not open {count} WebSockets to {url}")
    return holder


@dataclass
class Target:
    name: str
    http: str  # base URL for HTTP (Host: HTTP_HOST)
    stream: str  # base URL for SSE and WebSockets (Host: STREAM_HOST)
    pid: int | None  # the proxy's process, for memory


def settle_memory(pid: int) -> int:
    """The proxy's RSS once it stops moving (within a few seconds)."""
    previous, current = -1, rss_kib(pid)
    for _ in range(20):
        if abs(current - previous) < 256:
            break
        time.sleep(0.5)
        previous, current = current, rss_kib(pid)
    return current


def main() -> int:
    for tool in ("nginx", "wrk", "redis-server", "haproxy", "node"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing (make bench installs it)", file=sys.stderr)
            return 1
    if not (NODE / "node_modules").exists():
        print("bench: bench/node/node_modules is missing (make bench installs it)", file=sys.stderr)
        return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the proxies inherit it
    idle_count = min(int(os.environ.get("BENCH_IDLE_WEBSOCKETS", "10000")), hard // 2 - 200)
    work = Path(tempfile.mkdtemp(prefix="spacehub-bench-"))
    processes: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
        processes.append(process)
        return process

    try:
        socket_path = work / "redis.sock"
        start(["redis-server", "--port", "0", "--unixsocket", str(socket_path), "--save", ""])
        up_http, up_stream, nginx_port, spacehub_port = free_port(), free_port(), free_port(), free_port()
        chp_http, chp_stream = free_port(), free_port()
        start(["nginx", "-c", str(nginx_config(work, "upstream", nginx_upstream(up_http)))])
        start(["node", str(NODE / "upstream.js"), str(up_stream)])
        nginx = start(
            ["nginx", "-c", str(nginx_config(work, "proxy", nginx_proxy(nginx_port, up_http, up_stream)))]
        )
        chp = [
            start(
                [
                    str(NODE / "node_modules/.bin/configurable-http-proxy"),
                    "--ip=127.0.0.1",
                    f"--port={port}",
                    f"--api-port={free_port()}",
                    f"--default-target=http://127.0.0.1:{target}",
                    "--log-level=error",
                ],
                env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": "bench"},
            )
            for port, target in ((chp_http, up_http), (chp_stream, up_stream))
        ]
        client = redis.Redis(unix_socket_path=str(socket_path))
        for _ in range(100):
            if socket_path.exists():
                break
            time.sleep(0.05)
        routes = RouteTable(client, Keys(NAMESPACE))
        for number, (host, upstream) in enumerate(((HTTP_HOST, up_http), (STREAM_HOST, up_stream)), 1):
            subdomain = host.split(".")[0]
            routes.publish_space(
                SpaceFacts(subdomain, number, f"bench/{subdomain}", Stage.RUNNING, False, "docker")
            )
            routes.add_route(subdomain, f"127.0.0.1:{upstream}", 1, "bench")
        env = {
            **os.environ,
            "SPACEHUB_DATA_DIR": str(work),
            "SPACEHUB_PORT": str(spacehub_port),
            "SPACEHUB_REDIS_URL": f"unix://{socket_path}",
            "SPACEHUB_NAMESPACE": NAMESPACE,
            "SPACEHUB_LISTEN_HOSTS": '["127.0.0.1"]',
            "SPACEHUB_INTERNAL_TOKEN": "bench",
            "SPACEHUB_EDGE_DATA_PATH": "haproxy",
            "SPACEHUB_EDGE_THREADS": "1",  # as nginx's one worker
        }
        ours = start([sys.executable, "-m", "spacehub.cli", "proxy"], env=env, stderr=subprocess.DEVNULL)
        for port in (up_http, up_stream, nginx_port, chp_http, chp_stream, spacehub_port):
            wait_port(port)
        targets = [
            Target("direct (no proxy)", f"http://127.0.0.1:{up_http}", f"http://127.0.0.1:{up_stream}", None),
            Target(
                "nginx 1.22", f"http://127.0.0.1:{nginx_port}", f"http://127.0.0.1:{nginx_port}", nginx.pid
            ),
            Target(
                "configurable-http-proxy",
                f"http://127.0.0.1:{chp_http}",
                f"http://127.0.0.1:{chp_stream}",
                chp[1].pid,
            ),
            Target(
                "spacehub edge",
                f"http://127.0.0.1:{spacehub_port}",
                f"http://127.0.0.1:{spacehub_port}",
                ours.pid,
            ),
        ]
        time.sleep(1)  # the edge's route cache and HAProxy's map
        print(
            f"edge benchmark: {DURATION} s per figure, {os.cpu_count()} CPUs shared by the load, "
            "the proxies and the upstreams; HTTP upstream nginx (1 KiB), stream upstream Node (ws)\n"
        )
        header = (
            f"{'target':<26}{'req/s @32':>10}{'p50 ms':>8}{'p99 ms':>8}{'p50 ms @1':>10}{'errors':>7}"
            f"{'SSE ev/s':>10}{'WS msg/s':>10}"
        )
        print(header)
        results: dict[str, dict[str, float]] = {}
        for target in targets:
            many = wrk(target.http + "/", HTTP_HOST, 32)
            one = wrk(target.http + "/", HTTP_HOST, 1)
            sse = node_load("sse", target.stream + "/sse", STREAM_HOST, str(min(DURATION, 5)), timeout=60)
            ws = node_load(
                "ws",
                target.stream.replace("http", "ws") + "/ws",
                STREAM_HOST,
                "32",
                str(DURATION),
                timeout=120,
            )
            results[target.name] = {**many, "p50_one": one["p50_ms"], "sse": sse, "ws": ws}
            print(
                f"{target.name:<26}{many['rps']:>10.0f}{many['p50_ms']:>8.2f}{many['p99_ms']:>8.2f}"
                f"{one['p50_ms']:>10.3f}{many['errors'] + one['errors']:>7.0f}{sse:>10.0f}{ws:>10.0f}",
                flush=True,
            )
        ours_row, nginx_row, direct = (
            results["spacehub edge"],
            results["nginx 1.22"],
            results["direct (no proxy)"],
        )
        print(
            f"\nspacehub edge against nginx: {ours_row['rps'] / nginx_row['rps']:.0%} of its throughput "
            f"at 32 connections (target >= 80%); p50 at 1 connection "
            f"{ours_row['p50_one'] - nginx_row['p50_one']:+.3f} ms (target within 0.5 ms); SSE "
            f"{ours_row['sse'] / direct['sse']:.0%} and WebSocket {ours_row['ws'] / direct['ws']:.0%} of "
            "direct (target >= 80%)."
        )
        print(f"\nidle WebSockets: {idle_count:,} held open through each proxy (open-file limit {hard:,})")
        print(f"{'proxy':<26}{'RSS before MiB':>15}{'RSS with MiB':>14}{'KiB each':>10}{'at 10,000 MiB':>15}")
        for target in targets[1:]:
            assert target.pid is not None
            before = settle_memory(target.pid)
            holder = idle_websockets(target.stream.replace("http", "ws") + "/ws", idle_count)
            try:
                during = settle_memory(target.pid)
            finally:
                assert holder.stdin is not None
                holder.stdin.close()
                holder.wait(30)
            each = (during - before) / idle_count
            projected = (before + each * 10_000) / 1024
            print(
                f"{target.name:<26}{before / 1024:>15.1f}{during / 1024:>14.1f}{each:>10.1f}"
                f"{projected:>15.1f}",
                flush=True,
            )
            time.sleep(2)  # let the sockets close before the next proxy's count
        return 0
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


if __name__ == "__main__":
    sys.exit(main())
