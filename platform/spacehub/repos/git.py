"""Bare git repositories on disk, driven through git's plumbing commands."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_BRANCH = "main"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class GitError(RuntimeError):
    pass


@dataclass(frozen=True)
class TreeEntry:
    path: str
    type: str  # "blob" or "tree"
    oid: str
    size: int  # 0 for trees
    mode: str

    @property
    def is_symlink(self) -> bool:
        """Whether the entry is a symbolic link (git's mode 120000)."""
        return self.mode == "120000"


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    date: datetime
    title: str
    message: str
    author: str


def git_env() -> dict[str, str]:
    """git's environment: none of the caller's GIT_ variables or system config, no prompts, C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        HOME=os.environ.get("HOME", "/tmp"),
        LC_ALL="C",
    )
    return env


class GitRepo:
    """One bare repository. Methods take commit ids or ref names and never touch a work tree."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def init_bare(cls, path: Path) -> GitRepo:
        """A new empty bare repository at `path` that accepts pushes over smart HTTP."""
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={DEFAULT_BRANCH}", str(path)],
            check=True,
            env=git_env(),
        )
        repo = cls(path)
        # Pushes must not rewrite history silently behind a running build, but owners may force-push,
        # as on Hugging Face; receive.denyNonFastForwards stays at git's default (allowed).
        repo.run("config", "http.receivepack", "true")
        repo.run("config", "receive.fsckObjects", "true")
        repo.run("config", "uploadpack.allowAnySHA1InWant", "true")
        return repo

    @property
    def exists(self) -> bool:
        """Whether a repository is there (it has a HEAD)."""
        return (self.path / "HEAD").is_file()

    def run(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
        """The output of `git <args>` in this repository; GitError with git's message when it fails."""
        full_env = git_env()
        if env:
            full_env.update(env)
        proc = subprocess.run(
            ["git", f"--git-dir={self.path}", *args],
            input=input,
            capture_output=True,
            env=full_env,
        )
        if proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout

    def resolve(self, rev: str) -> str | None:
        """The commit id `rev` (branch, tag or id) points to, or None."""
        if rev.startswith("-"):
            return None
        try:
            out = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
        except GitError:
            return None
        sha = out.decode().strip()
        return sha or None

    def head(self, branch: str = DEFAULT_BRANCH) -> str | None:
        """The commit at the tip of `branch`, or None when it has no such branch (an empty repository)."""
        return self.resolve(f"refs/heads/{branch}")

    def tip(self, branch: str = DEFAULT_BRANCH) -> str | None:
        """`head(branch)` read from the ref files instead of a git process (microseconds, so cheap
        enough for every request): the loose ref, else packed-refs; git's own answer for anything
        unusual (a symbolic ref)."""
        ref = f"refs/heads/{branch}"
        try:
            loose = (self.path / ref).read_text().strip()
        except FileNotFoundError:
            loose = None
        except OSError:
            return self.head(branch)
        if loose is not None:
            return loose if SHA_RE.match(loose) else self.head(branch)
        try:
            packed = (self.path / "packed-refs").read_text()
        except FileNotFoundError:
            return None
        for line in packed.splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and SHA_RE.match(sha):
                return sha
        return None

    def branches(self) -> dict[str, str]:
        """Branch name -> the commit at its tip."""
        return self._refs("refs/heads/")

    def tags(self) -> dict[str, str]:
        """Tag name -> the object it points to."""
        return self._refs("refs/tags/")

    def _refs(self, prefix: str) -> dict[str, str]:
        out = self.run("for-each-ref", "--format=%(refname) %(objectname)", prefix).decode()
        refs = {}
        for line in out.splitlines():
            name, sha = line.rsplit(" ", 1)
            refs[name.removeprefix(prefix)] = sha
        return refs

    def commit_info(self, sha: str) -> CommitInfo:
        """The id, committer date (UTC), author and message of one commit."""
        out = self.run("show", "-s", "--format=%H%x00%cI%x00%an%x00%B", sha).decode()
        full, date, author, message = out.split("\x00", 3)
        message = message.strip()
        return CommitInfo(
            sha=full,
            date=datetime.fromisoformat(date).astimezone(UTC),
            title=message.splitlines()[0] if message else "",
            message=message,
            author=author,
        )

    def log(self, rev: str, limit: int = 50, skip: int = 0) -> list[CommitInfo]:
        """Up to `limit` commits reachable from `rev`, newest first, after skipping `skip`."""
        out = self.run("log", f"--max-count={limit}", f"--skip={skip}", "--format=%H", rev, "--").decode()
        return [self.commit_info(sha) for sha in out.split()]

    def tree(self, sha: str, path: str = "", recursive: bool = False) -> list[TreeEntry]:
        """Entries of the tree at `path` in commit `sha` ([] for an empty repository)."""
        args = ["ls-tree", "-l", "-z", "--full-tree"]
        if recursive:
            args += ["-r", "-t"]
        target = f"{sha}:{path}" if path else sha
        out = self.run(*args, target)
        entries = []
        prefix = f"{path}/" if path else ""
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, name = record.split(b"\t", 1)
            mode, kind, oid, size = meta.decode().split()
            entries.append(
                TreeEntry(
                    path=prefix + name.decode(errors="surrogateescape"),
                    type=kind,
                    oid=oid,
                    size=0 if size == "-" else int(size),
                    mode=mode,
                )
            )
        return entries

    def files(self, sha: str) -> list[TreeEntry]:
        """Every file (blob) of commit `sha`, recursively."""
        return [e for e in self.tree(sha, recursive=True) if e.type == "blob"]

    def entry(self, sha: str, path: str) -> TreeEntry | None:
        """The blob or tree at `path` in commit `sha`, or None."""
        path = path.strip("/")
        if not path:
            return TreeEntry(
                path="",
                type="tree",
                oid=self.run("rev-parse", f"{sha}^{{tree}}").decode().strip(),
                size=0,
                mode="040000",
            )
        parent, _, _name = path.rpartition("/")
        try:
            siblings = self.tree(sha, parent)
        except GitError:
            return None
        return next((e for e in siblings if e.path == path), None)

    def read_blob(self, oid: str) -> bytes:
        """The content of a blob."""
        return self.run("cat-file", "blob", oid)

    def read_file(self, sha: str, path: str) -> bytes | None:
        """The content of the file at `path` in commit `sha`; None when there is no file there."""
        entry = self.entry(sha, path)
        if entry is None or entry.type != "blob":
            return None
        return self.read_blob(entry.oid)

    def stream_blob(self, oid: str, start: int = 0, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """The bytes of a blob from offset `start`, without holding it in memory."""
        proc = subprocess.Popen(
            ["git", f"--git-dir={self.path}", "cat-file", "blob", oid],
            stdout=subprocess.PIPE,
            env=git_env(),
        )
        assert proc.stdout is not None
        try:
            remaining_skip = start
            while chunk := proc.stdout.read(chunk_size):
                if remaining_skip:
                    if len(chunk) <= remaining_skip:
                        remaining_skip -= len(chunk)
                        continue
                    chunk = chunk[remaining_skip:]
                    remaining_skip = 0
                yield chunk
        finally:
            proc.stdout.close()
            proc.kill()
            proc.wait()

    def archive(self, sha: str) -> subprocess.Popen[bytes]:
        """A running `git archive` of commit `sha` as a tar stream on stdout."""
        return subprocess.Popen(
            ["git", f"--git-dir={self.path}", "archive", "--format=tar", sha],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=git_env(),
        )
