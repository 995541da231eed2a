"""A local git work tree that tests commit to and push with the real `git` over HTTP."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check)


def with_token(url: str, token: str, user: str = "user") -> str:
    return url.replace("://", f"://{user}:{token}@", 1) if token else url


@dataclass
class LocalRepo:
    path: Path
    remote: str
    token: str

    @classmethod
    def clone_or_init(cls, path: Path, remote: str, token: str) -> LocalRepo:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            result = git("clone", "-q", with_token(remote, token), str(path), check=False)
            if result.returncode != 0:
                raise RuntimeError(f"git clone failed: {result.stderr}")
            git("checkout", "-q", "-B", "main", cwd=path)
        git("config", "user.name", "Test", cwd=path)
        git("config", "user.email", "test@example.com", cwd=path)
        return cls(path, remote, token)

    def write(self, files: dict[str, str | bytes]) -> None:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)

    def commit_and_push(
        self, files: dict[str, str | bytes], *, message: str = "update", delete: tuple[str, ...] = ()
    ) -> str:
        self.write(files)
        for name in delete:
            (self.path / name).unlink(missing_ok=True)
        git("add", "-A", cwd=self.path)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.path)
        self.push()
        return git("rev-parse", "HEAD", cwd=self.path).stdout.strip()

    def push(self, *extra: str) -> subprocess.CompletedProcess[str]:
        result = git(
            "push", "-q", *extra, with_token(self.remote, self.token), "main", cwd=self.path, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"git push failed: {result.stderr}")
        return result
