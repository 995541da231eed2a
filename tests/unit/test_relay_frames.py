"""The relay's frame scanner, on frames that the `websockets` library writes as browsers do (masked)."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from spacehub.proxy.relay import FrameScanner


def frame(opcode: Opcode, payload: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=True, extensions=[])


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 3, 125, 126, 65_535, 65_536, 300_000])
def test_a_data_frame_is_seen_whatever_its_length(size: int) -> None:
    scanner = FrameScanner()
    assert scanner.feed(frame(Opcode.BINARY, b"x" * size))
    assert scanner.skip == 0 and scanner.partial == b""


def test_control_frames_are_not_messages() -> None:
    scanner = FrameScanner()
    assert not scanner.feed(
        frame(Opcode.PING, b"hb") + frame(Opcode.PONG, b"") + frame(Opcode.CLOSE, b"\x03\xe8")
    )


def test_frames_split_anywhere_across_chunks() -> None:
    """A ping, then a text message in two fragments, fed a few bytes at a time: the scanner
    stays in step, so it sees the message start in exactly the chunk where its header ends."""
    ping = frame(Opcode.PING, b"p" * 10)
    first = frame(Opcode.TEXT, b"a" * 70_000, fin=False)
    rest = frame(Opcode.CONT, b"b" * 200)
    stream = ping + first + rest + ping
    for size in (1, 2, 7, 1000):
        scanner = FrameScanner()
        position, seen_at = 0, []
        for chunk in chunks(stream, size):
            if scanner.feed(chunk):
                seen_at.append(position + len(chunk))
            position += len(chunk)
        header_ends = [len(ping) + 2 + 8 + 4, len(ping) + len(first) + 2 + 2 + 4]
        assert len(seen_at) == len({-(-end // size) for end in header_ends}), size
        assert scanner.skip == 0 and scanner.partial == b""


def test_payload_bytes_that_look_like_headers_are_skipped() -> None:
    """An unmasked ping whose payload is a whole text frame is still only a ping."""
    scanner = FrameScanner()
    ping = Frame(Opcode.PING, frame(Opcode.TEXT, b"hello")).serialize(mask=False, extensions=[])
    assert not scanner.feed(ping)
