"""The WebSocket relay: HAProxy hands it the WebSockets of running public apps, and it splices
their bytes to the app unparsed, only reading the headers of the frames visitors send, so that
their messages count as visits (and thaw an app frozen meanwhile) as when the activator relayed
them message by message. HAProxy cannot count them: its counters of a tunnel move when it ends.

It listens on a unix socket that only HAProxy connects to; HAProxy has already routed the request,
set its X-Forwarded-* headers and removed the hub's credentials, and closes the connection after
an answer that is not an upgrade, so a connection carries one request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from spacehub.state.routes import SpaceRecord

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
# Connections HAProxy may have waiting to be accepted (visitors arrive in bursts; the kernel caps
# it at net.core.somaxconn).
BACKLOG = 4096
# Stop reading one side while the other has this much to write (and resume below a quarter of it).
HIGH_WATER = 256 * 1024
NOTICE_EVERY = 1.0
DATA_OPCODES = frozenset({0x0, 0x1, 0x2})  # continuation, text, binary (not ping, pong, close)
_HOST = re.compile(rb"\r\nhost:[ \t]*([^\r\n:]+)", re.IGNORECASE)
REFUSED = b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class FrameScanner:
    """Follows a stream of WebSocket frames from its headers alone, skipping their payloads."""

    __slots__ = ("partial", "skip")

    def __init__(self) -> None:
        self.skip = 0
        self.partial = b""

    def feed(self, data: bytes) -> bool:
        """Whether a data frame (text, binary or a continuation) starts in this chunk."""
        if self.partial:
            data, self.partial = self.partial + data, b""
        found, position, size = False, 0, len(data)
        while True:
            if self.skip:
                taken = min(self.skip, size - position)
                self.skip -= taken
                position += taken
                if self.skip:
                    return found
            if size - position < 2:
                self.partial = data[position:]
                return found
            first, second = data[position], data[position + 1]
            length, head = second & 0x7F, 2 + (4 if second & 0x80 else 0)
            head += 2 if length == 126 else 8 if length == 127 else 0
            if size - position < head:
                self.partial = data[position:]
                return found
            if length >= 126:
                length = int.from_bytes(data[position + 2 : position + (4 if length == 126 else 10)], "big")
            found = found or (first & 0x0F) in DATA_OPCODES
            position += head
            self.skip = length


class _Side(asyncio.Protocol):
    """One end of a spliced connection: what it receives is written to its peer, and each stops
    reading while the other cannot write."""

    transport: asyncio.Transport | None = None
    peer: _Side | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio: the connection is up; keep its transport."""
        # A stream transport (uvloop's are not subclasses of asyncio's).
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=HIGH_WATER, low=HIGH_WATER // 4)

    def send(self, data: bytes) -> None:
        """Write to this side, unless it is closed."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def pause_writing(self) -> None:
        """asyncio: this side's buffer is full; stop reading the other side."""
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        """asyncio: this side drained; read the other side again."""
        if self.peer is not None and self.peer.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio: this side closed; close the other side too."""
        self.transport = None
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()  # after what it still has to write


class _AppSide(_Side):
    """The app's end: it answers the upgrade, then sends frames."""

    def __init__(self, visitor: _VisitorSide):
        self.peer = visitor

    def data_received(self, data: bytes) -> None:
        """The app's answer (its handshake, then its frames) goes to the visitor as it comes."""
        visitor = self.peer
        assert isinstance(visitor, _VisitorSide)
        if visitor.scanner is None and data.startswith(b"HTTP/1.1 101"):
            visitor.scanner = FrameScanner()
        visitor.send(data)


class _VisitorSide(_Side):
    """The visitor's end (through HAProxy): a request head, then frames."""

    def __init__(self, relay: WebSocketRelay):
        self.relay = relay
        self.head = b""
        self.record: SpaceRecord | None = None
        self.scanner: FrameScanner | None = None
        self.noticed = 0.0

    def data_received(self, data: bytes) -> None:
        """The visitor's request head opens the app's side; then its frames go to the app, their
        headers read to count its messages."""
        if self.record is None:
            self.head += data
            if b"\r\n\r\n" in self.head:
                self.open(self.head)
            elif len(self.head) > MAX_HEAD:
                self.refuse(431, b"Request Header Fields Too Large")
            return
        if self.scanner is not None and self.scanner.feed(data):
            now = time.monotonic()
            if now - self.noticed >= NOTICE_EVERY:
                self.noticed = now
                self.relay.on_message(self.record)
        if self.peer is not None:
            self.peer.send(data)

    def open(self, head: bytes) -> None:
        """Route the request by its Host and open the app's end, which gets the head as it came."""
        match = _HOST.search(head)
        record = self.relay.resolve(match[1].decode("ascii", "replace").lower()) if match else None
        if record is None or not record.upstream:
            self.refuse(503, b"Service Unavailable")
            return
        self.record = record
        self.relay.on_message(record)  # opening the page's socket is a visit
        assert self.transport is not None
        self.transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self.connect(record.upstream, head))
        self.relay.opening.add(task)
        task.add_done_callback(self.relay.opening.discard)

    async def connect(self, upstream: str, head: bytes) -> None:
        """Open the app's side at `upstream`, send it the request head, and splice the two."""
        host, _, port = upstream.rpartition(":")
        loop = asyncio.get_running_loop()
        try:
            _, app = await asyncio.wait_for(
                loop.create_connection(lambda: _AppSide(self), host, int(port)),
                timeout=self.relay.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            log.info("app at %s did not take a WebSocket: %s", upstream, exc)
            self.refuse(502, b"Bad Gateway")
            return
        if self.transport is None:  # the visitor left meanwhile
            assert app.transport is not None
            app.transport.close()
            return
        self.peer = app
        app.send(head)
        self.transport.resume_reading()

    def refuse(self, status: int, reason: bytes) -> None:
        """Answer the visitor with an HTTP error and close."""
        if self.transport is not None:
            self.transport.write(REFUSED % (status, reason))
            self.transport.close()


class WebSocketRelay:
    """A unix-socket server that splices WebSockets to apps and reports visitors' messages."""

    def __init__(
        self,
        path: Path,
        resolve: Callable[[str], SpaceRecord | None],
        on_message: Callable[[SpaceRecord], None],
        connect_timeout: float,
    ):
        self.path = path
        self.resolve = resolve
        self.on_message = on_message
        self.connect_timeout = connect_timeout
        self.opening: set[asyncio.Task[None]] = set()
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen on the socket (only its owner may connect)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        loop = asyncio.get_running_loop()
        self.server = await loop.create_unix_server(
            lambda: _VisitorSide(self), str(self.path), backlog=BACKLOG
        )
        self.path.chmod(0o600)

    async def close(self) -> None:
        """Stop listening (spliced connections are cut when the process ends)."""
        if self.server is not None:
            self.server.close()
        for task in list(self.opening):
            task.cancel()
