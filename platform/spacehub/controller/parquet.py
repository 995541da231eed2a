"""Parquet conversions of datasets, where the Hub keeps them: each split of each config as Parquet
at `refs/convert/parquet` (`{config}/{split}/0000.parquet`), so that `datasets` and other readers
load any dataset the same fast way. A push converts its head in the background; a client asking
before that finished gets it converted on the spot. The conversion's commit names the commit it
was made from, which is how an up-to-date one is told from a stale one."""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow.parquet as pq

from spacehub.controller.context import ControllerContext
from spacehub.controller.repos import open_git
from spacehub.controller.viewer import DatasetAtHead
from spacehub.db.models import Repo, RepoType
from spacehub.errors import SpacehubError
from spacehub.repos.commits import Author, replace_tree
from spacehub.repos.git import GitError, GitRepo

log = logging.getLogger(__name__)

PARQUET_REF = "refs/convert/parquet"
SOURCE_TRAILER = "Converted-From: "
CONVERTER = Author("spacehub-parquet-converter", "parquet-converter@users.noreply.spacehub")
_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")


@dataclass(frozen=True)
class ParquetFile:
    """One converted split's file at the conversion's commit."""

    config: str
    split: str
    path: str
    size: int


def converted_from(git: GitRepo) -> str | None:
    """The commit the dataset's conversion was made from, if it has one."""
    head = git.resolve(PARQUET_REF)
    if head is None:
        return None
    for line in git.commit_info(head).message.splitlines():
        if line.startswith(SOURCE_TRAILER):
            return line[len(SOURCE_TRAILER) :].strip()
    return None


def convert(ctx: ControllerContext, repo: Repo) -> str | None:
    """Bring the dataset's conversion up to its head; returns the conversion's commit (None for an
    empty dataset). Splits that cannot be read are left out (the viewer says why for each)."""
    git = open_git(ctx.settings, repo)
    dataset = DatasetAtHead.of(git, repo)
    if dataset.sha is None:
        return None
    if converted_from(git) == dataset.sha:
        return git.resolve(PARQUET_REF)
    files: dict[str, bytes] = {}
    for config, splits in dataset.layout.items():
        for split in splits:
            try:
                table = dataset.split(config, split).table
            except SpacehubError as exc:
                log.info("%s: %s/%s is not converted: %s", repo.full_name, config, split, exc.message)
                continue
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
            files[f"{config}/{split}/0000.parquet"] = buffer.getvalue()
    message = f"Update parquet files\n\n{SOURCE_TRAILER}{dataset.sha}"
    try:
        return replace_tree(git, PARQUET_REF, files, message, CONVERTER)
    except GitError:  # another controller converted it meanwhile
        return git.resolve(PARQUET_REF)


def parquet_files(ctx: ControllerContext, repo: Repo) -> list[ParquetFile]:
    """The dataset's Parquet files at its head, converting it first where needed."""
    sha = convert(ctx, repo)
    if sha is None:
        return []
    found = []
    for entry in open_git(ctx.settings, repo).files(sha):
        config, _, rest = entry.path.partition("/")
        split = rest.partition("/")[0]
        if entry.path.endswith(".parquet") and split:
            found.append(ParquetFile(config, split, entry.path, entry.size))
    return found


def convert_soon(ctx: ControllerContext, repo_id: int) -> None:
    """Convert a dataset in the background (after a push), in a session of its own."""
    _BACKGROUND.submit(_convert_by_id, ctx, repo_id)


def _convert_by_id(ctx: ControllerContext, repo_id: int) -> None:
    try:
        with ctx.session() as session:
            repo = session.get(Repo, repo_id)
            if repo is not None and repo.type == RepoType.DATASET:
                convert(ctx, repo)
    except Exception:
        log.exception("converting dataset %s to Parquet failed", repo_id)
