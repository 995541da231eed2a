"""Files served as downloads from the hub's origin (repository and bucket files): `Range`
support, and never a page that runs there."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Iterator
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

# Served from the hub's own origin: never let a user's file run as a page there.
ACTIVE_TYPES = re.compile(
    r"^(text/html|image/svg|application/xhtml|text/xml|application/xml|application/javascript|text/javascript)"
)


def download_response(
    request: Request,
    path: str,
    size: int,
    chunks: Callable[[int], Iterator[bytes]],
    headers: dict[str, str],
) -> Response:
    """`size` bytes read by `chunks(offset)`, whole or the one range asked for, named after `path`."""
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if ACTIVE_TYPES.match(media_type):
        media_type = "text/plain"
    headers = {
        **headers,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, max-age=0, must-revalidate",
    }
    start, end = 0, size - 1
    status = 200
    if (wanted := request.headers.get("range")) and size:
        parsed = parse_range(wanted, size)
        if parsed is None:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(
        limited(chunks(start), length), status_code=status, headers=headers, media_type=media_type
    )


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte of a single `bytes=` range of a `size`-byte file; None if unusable."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:
        length = int(match[2])
        return (max(0, size - length), size - 1) if length else None
    start = int(match[1])
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    return (start, end) if start <= end and start < size else None


def limited(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    """The first `length` bytes of `chunks`."""
    remaining = length
    for chunk in chunks:
        if remaining <= 0:
            break
        yield chunk[:remaining]
        remaining -= len(chunk)
