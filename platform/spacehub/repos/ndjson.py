"""A streaming reader for the Hub's NDJSON commit payload.

huggingface_hub sends every regular file inline, base64 in a JSON string, one line per file: a
200 MB file is a 270 MB line. This reader never holds such a string: a string longer than
`threshold` bytes goes to a temporary file as it arrives and stands in the parsed object as a
`Spilled` value, which can be read back unescaped or base64-decoded, in chunks."""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

SPILL_THRESHOLD = 64 * 1024
READ_CHUNK = 1 << 20
_PLACEHOLDER = "\x00spacehub-spill-"


class NdjsonError(ValueError):
    """The payload is not valid NDJSON; `line` is 1-based."""

    def __init__(self, message: str, line: int):
        super().__init__(f"line {line} of the commit payload: {message}")
        self.line = line


@dataclass
class Spilled:
    """A long JSON string kept on disk, still in its escaped JSON form."""

    path: Path
    raw_size: int

    def text_chunks(self) -> Iterator[bytes]:
        """The string's value, UTF-8 encoded, in chunks."""
        with self.path.open("rb") as handle:
            carry = b""
            while chunk := handle.read(READ_CHUNK):
                data = carry + chunk
                cut = _safe_cut(data)
                piece, carry = data[:cut], data[cut:]
                if piece:
                    yield _unescape(piece)
            if carry:
                yield _unescape(carry)

    def base64_chunks(self) -> Iterator[bytes]:
        """The string's value decoded from base64, in chunks; raises binascii.Error if invalid."""
        pending = b""
        for text in self.text_chunks():
            pending += text.translate(None, b" \t\r\n")
            usable = len(pending) - len(pending) % 4
            if usable:
                yield base64.b64decode(pending[:usable], validate=True)
                pending = pending[usable:]
        if pending:
            yield base64.b64decode(pending, validate=True)

    def discard(self) -> None:
        """Delete the temporary file."""
        self.path.unlink(missing_ok=True)


def _unescape(raw: bytes) -> bytes:
    return str(json.loads(b'"' + raw + b'"')).encode("utf-8", "surrogatepass")


def _safe_cut(data: bytes) -> int:
    """Where `data` (escaped JSON string content) can be cut without splitting an escape sequence
    or a surrogate pair written as two escapes."""
    end = len(data)
    last = data.rfind(b"\\", max(0, end - 12))
    if last == -1:
        return end
    run_start = last
    while run_start > 0 and data[run_start - 1] == 0x5C:
        run_start -= 1
    if (last - run_start + 1) % 2 == 0:
        return end  # an escaped backslash ends the data
    needed = 6 if data[last + 1 : last + 2] == b"u" else 2
    if end - last < needed:
        return last
    if needed == 6 and end - last == 6 and data[last + 2 : last + 4].lower() in (b"d8", b"d9", b"da", b"db"):
        return last  # a high surrogate: its low half may follow
    return end


class NdjsonReader:
    """Feed bytes in; take parsed lines out."""

    def __init__(self, spill_dir: Path, threshold: int = SPILL_THRESHOLD):
        self.spill_dir = spill_dir
        self.threshold = threshold
        self.line_number = 0
        self._skeleton = bytearray()
        self._spills: list[Spilled] = []
        self._in_string = False
        self._escaped = False
        self._string = bytearray()
        self._spill_file: IO[bytes] | None = None
        self._spill_path: Path | None = None
        self._spill_size = 0

    def feed(self, data: bytes) -> list[Any]:
        """Parse the next bytes of the payload; returns the lines they complete (long strings spilled)."""
        lines: list[Any] = []
        i, n = 0, len(data)
        while i < n:
            if self._in_string:
                if self._escaped:
                    self._append(data[i : i + 1])
                    self._escaped = False
                    i += 1
                    continue
                quote, backslash = data.find(b'"', i), data.find(b"\\", i)
                if backslash != -1 and (quote == -1 or backslash < quote):
                    self._append(data[i : backslash + 1])
                    self._escaped = True
                    i = backslash + 1
                elif quote == -1:
                    self._append(data[i:])
                    i = n
                else:
                    self._append(data[i:quote])
                    self._end_string()
                    i = quote + 1
                continue
            quote, newline = data.find(b'"', i), data.find(b"\n", i)
            if newline != -1 and (quote == -1 or newline < quote):
                self._skeleton += data[i:newline]
                if (line := self._end_line()) is not None:
                    lines.append(line)
                i = newline + 1
            elif quote == -1:
                self._skeleton += data[i:]
                i = n
            else:
                self._skeleton += data[i:quote]
                self._in_string = True
                self._string.clear()
                i = quote + 1
        return lines

    def close(self) -> list[Any]:
        """The last line, if the payload lacks a final newline; NdjsonError if it ends inside a string."""
        if self._in_string:
            raise NdjsonError("the payload ends inside a string", self.line_number + 1)
        line = self._end_line()
        return [] if line is None else [line]

    def _append(self, data: bytes) -> None:
        if self._spill_file is not None:
            self._spill_file.write(data)
            self._spill_size += len(data)
            return
        self._string += data
        if len(self._string) > self.threshold:
            # Stays open across feed() calls until the string ends; _end_string closes it.
            handle = tempfile.NamedTemporaryFile(dir=self.spill_dir, prefix="spill-", delete=False)  # noqa: SIM115
            handle.write(self._string)
            self._spill_file, self._spill_path, self._spill_size = (
                handle,
                Path(handle.name),
                len(self._string),
            )
            self._string.clear()

    def _end_string(self) -> None:
        self._in_string = False
        if self._spill_file is None:
            self._skeleton += b'"' + self._string + b'"'
            return
        self._spill_file.close()
        assert self._spill_path is not None
        self._spills.append(Spilled(self._spill_path, self._spill_size))
        self._skeleton += json.dumps(f"{_PLACEHOLDER}{len(self._spills) - 1}").encode()
        self._spill_file, self._spill_path, self._spill_size = None, None, 0

    def _end_line(self) -> Any:
        self.line_number += 1
        text, spills = bytes(self._skeleton), self._spills
        self._skeleton, self._spills = bytearray(), []
        if not text.strip():
            return None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            for spill in spills:
                spill.discard()
            raise NdjsonError(exc.msg, self.line_number) from None
        return _substitute(parsed, spills)


def _substitute(value: Any, spills: list[Spilled]) -> Any:
    if isinstance(value, str) and value.startswith(_PLACEHOLDER):
        return spills[int(value[len(_PLACEHOLDER) :])]
    if isinstance(value, dict):
        return {k: _substitute(v, spills) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, spills) for v in value]
    return value


def string_chunks(value: str | Spilled, encoding: str) -> Iterator[bytes]:
    """The bytes a `file` operation's content stands for (`base64` or text encoding)."""
    if isinstance(value, Spilled):
        yield from value.base64_chunks() if encoding == "base64" else value.text_chunks()
        return
    if encoding == "base64":
        yield base64.b64decode("".join(value.split()), validate=True)
        return
    yield value.encode("utf-8")
