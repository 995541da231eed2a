"""A bucket's files on disk, as the hub reads and writes them. Apps write to the same directory
through their mount, so nothing here trusts its contents: every path is walked one component at a
time without following links (an app may have left a link to anywhere on the host), and only
regular files and directories are listed, read or counted."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from spacehub.config import APP_UID
from spacehub.errors import BadRequest, EntryNotFound

DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Entry:
    """A file or directory of a bucket, by its path from the bucket's root."""

    path: str
    is_dir: bool
    size: int
    mtime: datetime


def clean_bucket_path(path: object) -> str:
    """A path inside a bucket, normalised; BadRequest for one that could leave it."""
    if not isinstance(path, str) or not path.strip("/"):
        raise BadRequest("give a file's path inside the bucket")
    if "\x00" in path or "\\" in path or any(ord(c) < 32 for c in path):
        raise BadRequest(f"{path!r} contains a backslash or a control character")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts or len(path) > 4096:
        raise BadRequest(f"{path!r} leaves the bucket")
    return "/".join(parts)


def ensure_root(root: Path) -> None:
    """Create the bucket's directory, owned by the apps' user so that apps can write to it."""
    root.mkdir(parents=True, exist_ok=True)
    give_to_apps(str(root))


def give_to_apps(path: str, dir_fd: int | None = None) -> None:
    """Hand a file or directory the hub made to the user apps run as (when the hub may)."""
    with contextlib.suppress(PermissionError):
        os.chown(path, APP_UID, APP_UID, dir_fd=dir_fd, follow_symlinks=False)


@contextlib.contextmanager
def open_dir(root: Path, parts: list[str], *, create: bool = False) -> Iterator[int]:
    """A descriptor of the directory `parts` below `root`, reached without following any link;
    EntryNotFound when it is missing (or a link), made first with `create`."""
    fd = os.open(root, DIRECTORY)
    try:
        for part in parts:
            try:
                child = os.open(part, DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise EntryNotFound(f"{'/'.join(parts)} is not in the bucket") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                give_to_apps(part, dir_fd=fd)
                child = os.open(part, DIRECTORY, dir_fd=fd)
            except (NotADirectoryError, OSError):
                raise EntryNotFound(f"{'/'.join(parts)} is not a folder of the bucket") from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_file(root: Path, path: str) -> tuple[BinaryIO, Entry]:
    """A bucket file opened for reading, and what it is; EntryNotFound unless it is a regular file."""
    clean = clean_bucket_path(path)
    *folders, name = clean.split("/")
    with open_dir(root, folders) as parent:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent)
        except OSError:
            raise EntryNotFound(f"{path} is not in the bucket") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise EntryNotFound(f"{path} is not a file of the bucket")
    return os.fdopen(fd, "rb"), Entry(clean, False, info.st_size, _time(info.st_mtime))


def write_file(root: Path, path: str, source: BinaryIO) -> int:
    """Store `source` at `path` (replacing a file there); returns its size. The file appears whole
    or not at all: it is written beside its name, then renamed over it."""
    *folders, name = clean_bucket_path(path).split("/")
    with open_dir(root, folders, create=True) as parent:
        temporary = f".{name}.upload-{os.getpid()}-{id(source)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=parent)
        size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                while chunk := source.read(1 << 20):
                    handle.write(chunk)
                    size += len(chunk)
            give_to_apps(temporary, dir_fd=parent)
            os.rename(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=parent)
            raise
    return size


def delete_file(root: Path, path: str) -> bool:
    """Remove the file (or link) at `path`; False when there was none."""
    *folders, name = clean_bucket_path(path).split("/")
    try:
        with open_dir(root, folders) as parent:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                raise BadRequest(f"{path} is a folder: delete the files in it")
            os.unlink(name, dir_fd=parent)
            return True
    except (EntryNotFound, FileNotFoundError):
        return False


def entries(root: Path, prefix: str = "", *, recursive: bool = False) -> Iterator[Entry]:
    """The files and folders under `prefix` (the folder itself when it is one; the file when
    `prefix` names one), sorted by path; with `recursive`, everything below too."""
    parts = clean_bucket_path(prefix).split("/") if prefix.strip("/") else []
    try:
        with open_dir(root, parts) as fd:
            yield from _walk(fd, "/".join(parts), recursive)
    except EntryNotFound:
        found = path_info(root, prefix) if parts else None
        if found is not None:
            yield found


def _walk(fd: int, base: str, recursive: bool) -> Iterator[Entry]:
    for name in sorted(os.listdir(fd)):
        path = f"{base}/{name}" if base else name
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            yield Entry(path, False, info.st_size, _time(info.st_mtime))
        elif stat.S_ISDIR(info.st_mode):
            yield Entry(path, True, 0, _time(info.st_mtime))
            if recursive:
                try:
                    child = os.open(name, DIRECTORY, dir_fd=fd)
                except OSError:
                    continue
                try:
                    yield from _walk(child, path, recursive)
                finally:
                    os.close(child)


def path_info(root: Path, path: str) -> Entry | None:
    """The regular file at `path`, if there is one."""
    try:
        handle, entry = open_file(root, path)
    except (EntryNotFound, BadRequest):
        return None
    handle.close()
    return entry


def usage(root: Path) -> tuple[int, int]:
    """(bytes, files) the bucket holds: its regular files, links not followed."""
    size = count = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                size += info.st_size
                count += 1
    return size, count


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
