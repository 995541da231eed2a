"""Commits made through the API (the Hub's NDJSON `commit` endpoint), written with git's plumbing
into the bare repository: the same commits a `git push` makes, with the same consequences."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from spacehub.repos.git import DEFAULT_BRANCH, GitError, GitRepo, git_env
from spacehub.repos.ndjson import Spilled, string_chunks

ZERO_SHA = "0" * 40


class CommitError(ValueError):
    """The commit request is invalid; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400, code: str = "BadRequest"):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


def clean_path(path: Any, what: str = "path") -> str:
    """A path inside the repository, normalised; anything that could escape it is refused."""
    if not isinstance(path, str) or not path.strip():
        raise CommitError(f"{what} must be a non-empty string")
    if "\\" in path or "\x00" in path or any(ord(c) < 32 for c in path):
        raise CommitError(f"{what} {path!r} contains a backslash or a control character")
    if path.startswith("/"):
        raise CommitError(f"{what} {path!r} must be relative to the repository root")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise CommitError(f"{what} {path!r} leaves the repository")
    if is_git_path("/".join(parts)):
        raise CommitError(f"{what} {path!r} is inside .git, which is not part of the content")
    return "/".join(parts)


def is_git_path(path: str) -> bool:
    """Whether a path names git's own directory at some level, however it is spelled: `.GIT`,
    `.git.` or `git~1` name it too on some filesystems, and git refuses them (silently, for some)."""
    return any(part.rstrip(". ").lower() in (".git", "git~1") for part in path.split("/"))


@dataclass
class CommitPlan:
    summary: str = ""
    description: str = ""
    parent_commit: str | None = None
    added: dict[str, str] = field(default_factory=dict)  # path -> blob id (already in the object store)
    deleted_files: list[str] = field(default_factory=list)
    deleted_folders: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The commit message: the summary ("Update files" if empty), then the description."""
        summary = self.summary.strip() or "Update files"
        return f"{summary}\n\n{self.description.strip()}".strip() + "\n"


def write_blob(repo: GitRepo, chunks: Iterable[bytes], max_size: int) -> str:
    """Store a blob from a stream of chunks, never holding it whole; returns its id."""
    with tempfile.NamedTemporaryFile(dir=repo.path, prefix="incoming-", delete=True) as staging:
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > max_size:
                raise CommitError(
                    f"a file is larger than the limit of {max_size} bytes", 413, "PayloadTooLarge"
                )
            staging.write(chunk)
        staging.flush()
        out = subprocess.run(
            ["git", f"--git-dir={repo.path}", "hash-object", "-w", "--", staging.name],
            capture_output=True,
            env=git_env(),
        )
    if out.returncode != 0:
        raise GitError(out.stderr.decode(errors="replace"))
    return out.stdout.decode().strip()


def add_operation(plan: CommitPlan, repo: GitRepo, entry: Any, max_size: int) -> None:
    """Apply one NDJSON line (`{"key": ..., "value": ...}`) to the plan."""
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), dict):
        raise CommitError('each line must be {"key": ..., "value": {...}}')
    key, value = entry.get("key"), entry["value"]
    if key == "header":
        plan.summary = str(value.get("summary") or "")
        plan.description = str(value.get("description") or "")
        parent = value.get("parentCommit")
        plan.parent_commit = str(parent) if parent else None
    elif key == "file":
        path = clean_path(value.get("path"))
        content = value.get("content", "")
        encoding = value.get("encoding", "utf-8")
        if not isinstance(content, str | Spilled):
            raise CommitError(f"file {path}: content must be a string")
        try:
            plan.added[path] = write_blob(repo, string_chunks(content, encoding), max_size)
        except ValueError as exc:  # binascii.Error, UnicodeDecodeError
            if isinstance(exc, CommitError):
                raise
            raise CommitError(f"file {path}: content is not valid {encoding}") from None
        finally:
            if isinstance(content, Spilled):
                content.discard()
    elif key == "deletedFile":
        plan.deleted_files.append(clean_path(value.get("path")))
    elif key == "deletedFolder":
        plan.deleted_folders.append(clean_path(value.get("path")))
    elif key in ("lfsFile", "copyFile"):
        raise CommitError(
            f"`{key}` operations are not supported: this hub stores every file in git "
            "(preupload answers `regular`); upload the content inline"
        )
    else:
        raise CommitError(f"unknown operation {key!r}")


def plan_from_json(body: dict[str, Any], repo: GitRepo, max_size: int) -> CommitPlan:
    """The older JSON form: {"summary", "description", "parentCommit", "files", "deletedFiles"}."""
    plan = CommitPlan()
    add_operation(plan, repo, {"key": "header", "value": body}, max_size)
    for item in body.get("files") or []:
        add_operation(plan, repo, {"key": "file", "value": item}, max_size)
    for item in body.get("deletedFiles") or []:
        add_operation(plan, repo, {"key": "deletedFile", "value": item}, max_size)
    for item in body.get("deletedFolders") or []:
        add_operation(plan, repo, {"key": "deletedFolder", "value": item}, max_size)
    if body.get("lfsFiles"):
        add_operation(plan, repo, {"key": "lfsFile", "value": {}}, max_size)
    return plan


@dataclass(frozen=True)
class Author:
    name: str
    email: str


def apply_plan(
    repo: GitRepo, plan: CommitPlan, branch: str, author: Author, attempts: int = 3, ref: str | None = None
) -> str:
    """Commit the plan on top of `branch` (or of another `ref`, a pull request's) and move it;
    returns the new head.

    Without `parentCommit` a concurrent update is absorbed by recomputing on the new head; with it,
    the branch must still point there (409 otherwise, and nothing is written)."""
    ref = ref or f"refs/heads/{branch}"
    for _ in range(attempts):
        head = repo.resolve(ref)
        if head is None and repo.branches():
            raise CommitError(f"branch {branch!r} does not exist", 404, "RevisionNotFound")
        if plan.parent_commit is not None and plan.parent_commit != head:
            raise CommitError(
                f"the branch moved: parentCommit is {plan.parent_commit} but {branch} is at {head}; "
                "fetch the new head and commit again",
                409,
                "Conflict",
            )
        tree = _write_tree(repo, head, plan)
        if head is not None and tree == repo.run("rev-parse", f"{head}^{{tree}}").decode().strip():
            return head  # nothing changed: no empty commit
        commit = _commit_tree(repo, tree, head, plan.message, author)
        try:
            repo.run("update-ref", ref, commit, head or ZERO_SHA)
            return commit
        except GitError:
            if plan.parent_commit is not None:
                raise CommitError(f"{branch} moved while committing; commit again", 409, "Conflict") from None
    raise CommitError(f"{branch} kept moving; commit again", 409, "Conflict")


def _write_tree(repo: GitRepo, head: str | None, plan: CommitPlan) -> str:
    with tempfile.TemporaryDirectory(prefix="index-", dir=repo.path) as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        if head is not None:
            repo.run("read-tree", head, env=env)
        present = set(_list_index(repo, env))
        removals: list[str] = []
        for folder in plan.deleted_folders:
            inside = [p for p in present if p == folder or p.startswith(folder + "/")]
            if not inside:
                raise CommitError(f"cannot delete folder {folder}: it does not exist", 404, "EntryNotFound")
            removals += inside
        for path in plan.deleted_files:
            if path not in present:
                raise CommitError(f"cannot delete {path}: it does not exist", 404, "EntryNotFound")
            removals.append(path)
        # --index-info works without a work tree: mode 0 removes an entry.
        records = [f"0 {ZERO_SHA}\t{path}\0" for path in removals]
        if plan.added:
            _check_conflicts(present - set(removals), plan.added)
            records += [f"100644 {oid}\t{path}\0" for path, oid in plan.added.items()]
        if records:
            repo.run("update-index", "-z", "--index-info", input="".join(records).encode(), env=env)
        return repo.run("write-tree", env=env).decode().strip()


def _list_index(repo: GitRepo, env: dict[str, str]) -> Iterator[str]:
    for path in repo.run("ls-files", "-z", env=env).split(b"\0"):
        if path:
            yield path.decode(errors="surrogateescape")


def _folders(paths: Iterable[str]) -> set[str]:
    return {"/".join(p.split("/")[:depth]) for p in paths for depth in range(1, p.count("/") + 1)}


def _check_conflicts(existing: set[str], added: dict[str, str]) -> None:
    """A path cannot be both a file and a folder (git would silently replace one by the other)."""
    files = existing | set(added)
    folders = _folders(files)
    for path in added:
        if path in folders:
            raise CommitError(f"cannot add {path}: it is a folder")
        for folder in _folders([path]):
            if folder in files:
                raise CommitError(f"cannot add {path}: {folder} is a file")


def _commit_tree(
    repo: GitRepo, tree: str, parent: str | None, message: str, author: Author, *more: str
) -> str:
    env = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": author.name,
        "GIT_COMMITTER_EMAIL": author.email,
    }
    args = ["commit-tree", tree]
    for each in (parent, *more):
        if each is not None:
            args += ["-p", each]
    return repo.run(*args, input=message.encode(), env=env).decode().strip()


class MergeConflict(CommitError):
    def __init__(self, files: list[str]):
        super().__init__(
            f"the changes conflict with the target branch in {', '.join(files)}", 409, "Conflict"
        )
        self.files = files


def _is_ancestor(repo: GitRepo, ancestor: str, descendant: str) -> bool:
    check = ["git", f"--git-dir={repo.path}", "merge-base", "--is-ancestor", ancestor, descendant]
    return subprocess.run(check, capture_output=True, env=git_env()).returncode == 0


def merge_refs(repo: GitRepo, source_ref: str, target_ref: str, message: str, author: Author) -> str:
    """Merge `source_ref` into `target_ref` (fast-forward when the target has not moved, else a
    merge commit of both, made without a work tree); the target's new head. MergeConflict, and
    nothing written, when both changed the same lines."""
    source, target = repo.resolve(source_ref), repo.resolve(target_ref)
    if source is None or target is None:
        raise CommitError(
            f"{source_ref if source is None else target_ref} does not exist", 404, "RevisionNotFound"
        )
    if _is_ancestor(repo, source, target):
        return target  # nothing new to bring in
    if _is_ancestor(repo, target, source):
        merged = source
    else:
        command = [
            "git",
            f"--git-dir={repo.path}",
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
        ]
        proc = subprocess.run([*command, target, source], capture_output=True, env=git_env())
        lines = proc.stdout.decode().splitlines()
        if proc.returncode == 1:
            raise MergeConflict([line for line in lines[1:] if line])
        if proc.returncode != 0:
            raise GitError(f"git merge-tree failed: {proc.stderr.decode(errors='replace').strip()}")
        merged = _commit_tree(repo, lines[0], target, message, author, source)
    try:
        repo.run("update-ref", target_ref, merged, target)
    except GitError:
        raise CommitError(f"{target_ref} moved while merging; merge again", 409, "Conflict") from None
    return merged


def replace_tree(repo: GitRepo, ref: str, files: dict[str, bytes], message: str, author: Author) -> str:
    """Commit exactly `files` at `ref` (made when missing), on top of its previous commit; returns
    the new head (the old one when nothing changed). A concurrent update of `ref` raises GitError."""
    plan = CommitPlan(summary=message)
    for path, content in files.items():
        plan.added[clean_path(path)] = write_blob(repo, [content], 1 << 40)
    head = repo.resolve(ref)
    tree = _write_tree(repo, None, plan)
    if head is not None and tree == repo.run("rev-parse", f"{head}^{{tree}}").decode().strip():
        return head
    commit = _commit_tree(repo, tree, head, plan.message, author)
    repo.run("update-ref", ref, commit, head or ZERO_SHA)
    return commit


def commit_files(
    repo: GitRepo,
    files: dict[str, bytes],
    message: str,
    author: Author,
    branch: str = DEFAULT_BRANCH,
    max_size: int = 1 << 40,
) -> str:
    """Commit whole files (templates, duplicates) in one go."""
    plan = CommitPlan(summary=message)
    for path, content in files.items():
        plan.added[clean_path(path)] = write_blob(repo, [content], max_size)
    return apply_plan(repo, plan, branch, author)
