"""Forwarding one request to an upstream: HTTP/1.1 with keep-alive, bodies streamed both ways
(SSE is never buffered), WebSocket upgrades with their subprotocols."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Connection",
    )
)
# Set by the proxy from what it knows, never taken from the client.
FORWARDING = frozenset(
    (
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-prefix",
        "x-forwarded-port",
        "forwarded",
        "x-real-ip",
    )
)
WEBSOCKET_HANDSHAKE = frozenset(
    ("sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol")
)


BUFFERED_ANSWER_SIZE = 64 * 1024


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class Upstream:
    """Where to send a request: `base` (http://host:port), the path to ask for there, and the
    headers to add (forwarding information, credentials of the proxy itself); `response_headers`
    are added to the answer, `override_headers` replace the upstream's own."""

    base: str
    path: str
    headers: dict[str, str]
    remove_headers: frozenset[str] = frozenset()
    response_headers: tuple[tuple[str, str], ...] = ()
    override_headers: tuple[tuple[str, str], ...] = ()


def request_headers(
    request: web.BaseRequest, upstream: Upstream, *, websocket: bool = False
) -> CIMultiDict[str]:
    """The headers to send upstream: the client's, less hop-by-hop, forwarding and removed ones."""
    connection_tokens = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in FORWARDING or lowered in connection_tokens:
            continue
        if websocket and lowered in WEBSOCKET_HANDSHAKE:
            continue
        if lowered in upstream.remove_headers:
            continue
        headers.add(name, value)
    for name, value in upstream.headers.items():
        headers[name] = value
    return headers


def response_headers(
    upstream_headers: CIMultiDict[str] | aiohttp.typedefs.LooseHeaders, upstream: Upstream
) -> CIMultiDict[str]:
    """Headers for the client: the upstream's less hop-by-hop ones; `upstream` adds some, overrides some."""
    headers: CIMultiDict[str] = CIMultiDict()
    source = upstream_headers if isinstance(upstream_headers, CIMultiDict) else CIMultiDict(upstream_headers)
    connection_tokens = {t.strip().lower() for t in source.get("Connection", "").split(",")}
    for name, value in source.items():
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in connection_tokens:
            continue
        headers.add(name, value)
    for name, value in upstream.response_headers:
        headers.add(name, value)
    for name, value in upstream.override_headers:
        headers[name] = value
    return headers


class LimitedBody:
    """The request body, streamed; stops at `limit` bytes. aiohttp reports an error raised while
    it sends the body as a connection error, so `exceeded` tells the two apart."""

    def __init__(self, request: web.BaseRequest, limit: int):
        self.request = request
        self.limit = limit
        self.exceeded = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive; BodyTooLarge once more than `limit` bytes came."""
        received = 0
        async for chunk in self.request.content.iter_any():
            received += len(chunk)
            if received > self.limit:
                self.exceeded = True
                raise BodyTooLarge()
            yield chunk


async def forward_http(
    request: web.BaseRequest, session: aiohttp.ClientSession, upstream: Upstream, body_limit: int
) -> web.StreamResponse:
    """Send `request` to `upstream` and stream the answer back."""
    length = request.content_length
    if length is not None and length > body_limit:
        raise BodyTooLarge()
    headers = request_headers(request, upstream)
    body = LimitedBody(request, body_limit) if request.body_exists else None
    try:
        answer = await session.request(
            request.method,
            upstream.base + upstream.path,
            headers=headers,
            data=body.chunks() if body else None,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
    except aiohttp.ClientError:
        if body is not None and body.exceeded:
            raise BodyTooLarge() from None
        raise
    async with answer:
        response = web.StreamResponse(
            status=answer.status, reason=answer.reason, headers=response_headers(answer.headers, upstream)
        )
        length = answer.content_length
        if length is not None and request.method != "HEAD":
            response.content_length = length
            if length <= BUFFERED_ANSWER_SIZE:
                # Small answers are read whole before the client sees a byte, so that an upstream
                # dying half-way raises here, where the request may still be sent elsewhere.
                body_bytes = await answer.read()
                await response.prepare(request)
                await response.write(body_bytes)
                await response.write_eof()
                return response
        await response.prepare(request)
        try:
            if request.method != "HEAD":
                async for chunk in answer.content.iter_any():
                    await response.write(chunk)
        except aiohttp.ClientError as exc:
            # The upstream broke off an answer already begun: the client's is cut off the same way.
            log.info("%s broke off its answer to %s: %r", upstream.base, upstream.path, exc)
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response


async def forward_websocket(
    request: web.BaseRequest,
    session: aiohttp.ClientSession,
    upstream: Upstream,
    on_client_message: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """Open the same WebSocket upstream (offering the client's subprotocols), accept the client's
    with the subprotocol the upstream chose, then relay frames both ways until either side closes."""
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    headers = request_headers(request, upstream, websocket=True)
    url = upstream.base.replace("http://", "ws://", 1) + upstream.path
    try:
        upstream_ws = await session.ws_connect(
            url,
            protocols=protocols,
            headers=headers,
            autoping=False,
            max_msg_size=0,
            compress=0,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
        )
    except aiohttp.WSServerHandshakeError as exc:
        return web.Response(status=exc.status or 502, text=f"upstream refused the WebSocket: {exc.message}\n")
    client_ws = web.WebSocketResponse(
        protocols=[upstream_ws.protocol] if upstream_ws.protocol else (),
        autoping=False,
        max_msg_size=0,
        compress=False,
    )
    try:
        await client_ws.prepare(request)
        await _relay(client_ws, upstream_ws, on_client_message)
    finally:
        await upstream_ws.close()
        if not client_ws.closed:
            await client_ws.close()
    return client_ws


async def _relay(
    client: web.WebSocketResponse,
    upstream: aiohttp.ClientWebSocketResponse,
    on_client_message: Callable[[], Awaitable[None]] | None,
) -> None:
    async def pump(
        source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        target: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    ) -> None:
        async for message in source:
            if (
                source is client
                and on_client_message is not None
                and message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)
            ):
                await on_client_message()
            if message.type == aiohttp.WSMsgType.TEXT:
                await target.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await target.send_bytes(message.data)
            elif message.type == aiohttp.WSMsgType.PING:
                await target.ping(message.data)
            elif message.type == aiohttp.WSMsgType.PONG:
                await target.pong(message.data)
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                break
        code = source.close_code or aiohttp.WSCloseCode.OK
        with contextlib.suppress(Exception):
            await target.close(code=code)

    tasks = [asyncio.create_task(pump(client, upstream)), asyncio.create_task(pump(upstream, client))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
