"""The edge's data path: HAProxy (Debian's 2.6) on the public port serves the requests of running
apps itself, at a proven proxy's cost; everything else goes to the Python edge behind it, the
*activator* (Knative's split): hub requests, apps that are frozen, asleep, starting or private,
waking pages, held requests. WebSockets to running apps go through the relay (proxy/relay.py),
which splices them and counts the messages visitors send.

HAProxy routes by a map (app host -> address) that this module keeps equal to the route table,
through HAProxy's runtime API: a route change applies at once, open connections keep going, and no
reload happens. Visits to apps it serves are counted in a stick table (requests, and requests in
flight) that the activator reads every second to record activity, so that idle tiers and sleep
work as when every request went through Python."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spacehub.config import Settings
from spacehub.processes import die_with_parent
from spacehub.state.activity import BACKGROUND_PATHS
from spacehub.state.routes import SpaceRecord

log = logging.getLogger(__name__)

# Runtime commands are sent several to a line, up to this many bytes (HAProxy reads lines into one
# 16 KiB buffer).
COMMAND_LINE = 8000
_TABLE_ROW = re.compile(r"key=(?P<key>\S+) .*?conn_cur=(?P<current>\d+) http_req_cnt=(?P<count>\d+)")


def haproxy_available() -> bool:
    """Whether HAProxy is installed here."""
    return shutil.which("haproxy") is not None


def fast_path_upstream(record: SpaceRecord) -> str | None:
    """Where HAProxy sends a space's requests itself, or None when the activator must see them: an
    app that answers now (an address, serving), public, not static, without headers to add."""
    simple = not record.private and not record.static_sha and not record.headers and record.embeddable
    return record.serving_upstream if simple else None


@dataclass(frozen=True)
class Visits:
    """What HAProxy counted for one app host: requests so far, and requests in flight now."""

    requests: int
    in_flight: int


def parse_table(text: str) -> dict[str, Visits]:
    """`show table` output, by key."""
    return {
        m["key"]: Visits(int(m["count"]), int(m["current"]))
        for m in map(_TABLE_ROW.search, text.splitlines())
        if m
    }


class DataPath:
    """HAProxy in front of the activator, and its map kept equal to the route table."""

    def __init__(self, settings: Settings, run_dir: Path):
        self.settings = settings
        self.run_dir = run_dir
        self.map_file = run_dir / "apps.map"
        self.socket = run_dir / "haproxy.sock"
        self.config_file = run_dir / "haproxy.cfg"
        # HAProxy reaches the activator and the relay by unix sockets that only this user can open.
        self.activator_socket = run_dir / "activator.sock"
        self.relay_socket = run_dir / "relay.sock"
        if len(str(self.relay_socket)) > 100:
            raise SystemExit(
                f"{run_dir} is too long a path for unix sockets; use a shorter SPACEHUB_DATA_DIR"
            )
        self.process: asyncio.subprocess.Process | None = None
        self.entries: dict[str, str] = {}
        self.domains: dict[str, str] = {}  # subdomain -> the custom domain its entries include
        self._lock = asyncio.Lock()

    def host_of(self, subdomain: str) -> str:
        """The Host (without port) visitors use for a space's app."""
        return f"{subdomain}.{self.settings.resolved_apps_domain}".lower()

    # HAProxy -------------------------------------------------------------------------------------

    def config(self) -> str:
        """HAProxy's configuration: the public port, the app map, the activator behind it."""
        settings = self.settings
        binds = "\n".join(
            f"    bind {'[' + h + ']' if ':' in h else h}:{settings.port}{' v6only' if ':' in h else ''}"
            for h in settings.listen_hosts
        )
        background = " ".join(BACKGROUND_PATHS)
        threads = f"\n    nbthread {settings.edge_threads}" if settings.edge_threads else ""
        return f"""# Written by spacehub's edge (proxy/datapath.py) at each start; not to be edited.
global
    stats socket {self.socket} mode 600 level admin{threads}
    log stderr format short local0 warning

defaults
    mode http
    log global
    option dontlognull
    timeout connect {settings.upstream_connect_timeout:g}s
    retries 3
    timeout http-request 60s
    timeout http-keep-alive 60s
    # Streams (SSE, long predictions) and tunnels (WebSockets) have no idle timeout.
    timeout client 24h
    timeout server 24h
    timeout tunnel 24h

frontend public
{binds}
    # X-Forwarded-* come from the edge only, never from the client.
    http-request del-header X-Forwarded-For
    http-request del-header X-Forwarded-Host
    http-request del-header X-Forwarded-Proto
    http-request del-header X-Forwarded-Prefix
    http-request del-header X-Forwarded-Port
    http-request del-header Forwarded
    http-request del-header X-Real-IP
    http-request set-header X-Forwarded-For %[src]
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Forwarded-Proto {settings.public_scheme}
    http-request deny deny_status 413 if {{ req.hdr_val(content-length) gt {settings.max_body_size} }}
    http-request set-var(txn.upstream) req.hdr(host),field(1,:),lower,map({self.map_file})
    acl app var(txn.upstream) -m found
    acl websocket hdr(upgrade) -i websocket
    acl chunked req.hdr(transfer-encoding) -m found
    acl credentials req.cook(spacehub-access) -m found
    acl credentials url_param(__sign) -m found
    acl status path /.spacehub/status
    acl background path_sub {background}
    http-request track-sc0 req.hdr(host),field(1,:),lower table visits if app !background !websocket
    use_backend relay if app websocket !credentials !status
    use_backend apps if app !websocket !chunked !credentials !status
    default_backend activator

backend apps
    # Apps never see a credential of the hub's.
    http-request del-header Authorization
    http-request del-header X-HF-Authorization
    http-request set-dst var(txn.upstream),field(1,:)
    http-request set-dst-port var(txn.upstream),field(2,:)
    # Connections are kept per destination: reusing them is safe across apps.
    http-reuse always
    server app 0.0.0.0:0

backend relay
    http-request del-header Authorization
    http-request del-header X-HF-Authorization
    # One request per connection to the relay, which routes by the first one's Host.
    option http-server-close
    http-reuse never
    server relay {self.relay_socket}

backend activator
    server activator {self.activator_socket}

backend visits
    stick-table type string len 255 size 1m expire 1h store http_req_cnt,conn_cur
"""

    async def start(self, records: dict[str, SpaceRecord]) -> None:
        """Write the configuration and the map for `records`, start HAProxy, and wait for it."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.domains = {}
        wanted: dict[str, str | None] = {}
        for subdomain, record in records.items():
            wanted.update(self._entries_of(subdomain, record))
        self.entries = {host: upstream for host, upstream in wanted.items() if upstream}
        self.map_file.write_text(
            "".join(f"{host} {upstream}\n" for host, upstream in sorted(self.entries.items()))
        )
        self.config_file.write_text(self.config())
        self.socket.unlink(missing_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            "haproxy",
            "-db",
            "-f",
            str(self.config_file),
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # never an orphan HAProxy holding the public port
        )
        for _ in range(200):
            if self.socket.exists():
                with contextlib.suppress(OSError):
                    await self.command("show info")
                    log.info("HAProxy serves running apps on port %s", self.settings.port)
                    return
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeError(f"HAProxy did not start (exit status {self.process.returncode})")

    async def close(self) -> None:
        """Stop HAProxy (open connections are cut)."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), timeout=10)

    async def command(self, line: str) -> str:
        """One command of HAProxy's runtime API, and its answer."""
        reader, writer = await asyncio.open_unix_connection(str(self.socket))
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            return (await asyncio.wait_for(reader.read(), timeout=10)).decode(errors="replace")
        finally:
            writer.close()

    # Routes --------------------------------------------------------------------------------------

    async def apply(self, records: dict[str, SpaceRecord | None]) -> None:
        """Make the map say of these spaces what their records say (None: the space is gone)."""
        wanted: dict[str, str | None] = {}
        for subdomain, record in records.items():
            wanted.update(self._entries_of(subdomain, record))
        await self._set_entries(wanted)

    async def apply_all(self, records: dict[str, SpaceRecord]) -> None:
        """Make the whole map equal to the route table (after the route cache reloaded it all)."""
        wanted: dict[str, str | None] = {}
        for subdomain, record in records.items():
            wanted.update(self._entries_of(subdomain, record))
        gone: dict[str, str | None] = {host: None for host in self.entries if host not in wanted}
        await self._set_entries(gone | wanted)

    def _entries_of(self, subdomain: str, record: SpaceRecord | None) -> dict[str, str | None]:
        """The map entries of one space: its app host and its custom domain (None: no entry; a
        custom domain it had before loses its entry)."""
        upstream = fast_path_upstream(record) if record is not None else None
        entries: dict[str, str | None] = {self.host_of(subdomain): upstream}
        previous = self.domains.pop(subdomain, "")
        if previous:
            entries[previous] = None
        if record is not None and record.domain:
            entries[record.domain] = upstream
            self.domains[subdomain] = record.domain
        return entries

    async def _set_entries(self, wanted: dict[str, str | None]) -> None:
        """Add, change or remove map entries (upstream None: no entry), by as few runtime commands
        as fit in HAProxy's command lines."""
        async with self._lock:
            commands = []
            for host, upstream in wanted.items():
                current = self.entries.get(host)
                if upstream == current:
                    continue
                if upstream is None:
                    commands.append(f"del map {self.map_file} {host}")
                    del self.entries[host]
                else:
                    verb = "set" if current is not None else "add"
                    commands.append(f"{verb} map {self.map_file} {host} {upstream}")
                    self.entries[host] = upstream
            line: list[str] = []
            for command in commands:
                if line and sum(map(len, line)) + len(command) > COMMAND_LINE:
                    await self.command(";".join(line))
                    line = []
                line.append(command)
            if line:
                await self.command(";".join(line))

    async def visits(self) -> dict[str, Visits]:
        """What HAProxy counted per app host."""
        return parse_table(await self.command("show table visits"))

    def watch(self, on_exit: Callable[[int], None]) -> asyncio.Task[None]:
        """Call `on_exit` with HAProxy's exit status if it stops."""

        async def wait() -> None:
            assert self.process is not None
            on_exit(await self.process.wait())

        return asyncio.create_task(wait())
