"""A real HTTP/WebSocket server standing where an app container would, to look at what the edge
proxy sends and how it streams (runs its own event loop in a thread)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from contextlib import closing

from aiohttp import web

SSE_NEXT = web.AppKey("sse_next", asyncio.Queue)


def _free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    peer = request.transport.get_extra_info("peername") if request.transport else None
    local = request.transport.get_extra_info("sockname") if request.transport else None
    return web.json_response(
        {
            "peer": list(peer) if peer else None,
            "served_by": local[1] if local else None,
            "method": request.method,
            "path": request.raw_path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body_length": len(body),
            "chunked": request.headers.get("Transfer-Encoding", "") == "chunked",
        },
        headers={"Set-Cookie": "session=abc; Path=/", "X-Upstream": "yes"},
    )


async def sse(request: web.Request) -> web.StreamResponse:
    """Three events in lockstep with the client: each one after the client asked for it (POST
    /sse/next), so that a proxy that buffered the stream would leave the client waiting forever."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    asked = request.app[SSE_NEXT]
    for number in range(3):
        if number:
            await asyncio.wait_for(asked.get(), timeout=30)
        await response.write(f"data: {number}\n\n".encode())
    await response.write_eof()
    return response


async def sse_next(request: web.Request) -> web.Response:
    request.app[SSE_NEXT].put_nowait(None)
    return web.Response(text="ok")


async def count(request: web.Request) -> web.Response:
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
    return web.json_response({"received": total})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("streamlit", "chat"))
    await ws.prepare(request)
    await ws.send_str(
        json.dumps(
            {
                "protocol": ws.ws_protocol,
                "origin": request.headers.get("Origin"),
                "host": request.headers.get("Host"),
                "cookie": request.headers.get("Cookie"),
            }
        )
    )
    async for message in ws:
        if message.type == web.WSMsgType.TEXT:
            await ws.send_str("echo:" + message.data)
        elif message.type == web.WSMsgType.BINARY:
            await ws.send_bytes(message.data[::-1])
    return ws


class Upstream:
    def __init__(self) -> None:
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Upstream:
        app = web.Application(client_max_size=1024**3)
        app[SSE_NEXT] = asyncio.Queue()
        app.router.add_post("/sse/next", sse_next)
        app.router.add_route("*", "/sse", sse)
        app.router.add_route("POST", "/count", count)
        app.router.add_get("/ws", websocket)
        app.router.add_route("*", "/{tail:.*}", echo)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(app), self.loop).result(10)
        return self

    async def _serve(self, app: web.Application) -> None:
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
