"""The dataset viewer's API on the platform's own datasets, under /viewer, in the shapes of Hugging
Face's dataset viewer (`/is-valid`, `/splits`, `/first-rows`, `/rows`, `/search`, `/size`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from spacehub.controller.accounts import Principal
from spacehub.controller.context import ControllerContext
from spacehub.controller.parquet import PARQUET_REF, parquet_files
from spacehub.controller.repos import get_readable_repo, open_git
from spacehub.controller.viewer import MAX_PAGE, DatasetAtHead, Split
from spacehub.db.models import Repo, RepoType
from spacehub.errors import BadRequest
from spacehub.http.deps import CtxDep, PrincipalDep, SessionDep
from spacehub.http.urls import public_base_url

router = APIRouter(prefix="/viewer", tags=["dataset viewer"])
FIRST_ROWS = 100


def _dataset(session: Session, principal: Principal, dataset: str) -> Repo:
    owner, _, name = dataset.partition("/")
    if not owner or not name:
        raise BadRequest("`dataset` is owner/name")
    return get_readable_repo(session, principal, RepoType.DATASET, owner, name)


def _open(ctx: ControllerContext, session: Session, principal: Principal, dataset: str) -> DatasetAtHead:
    repo = _dataset(session, principal, dataset)
    return DatasetAtHead.of(open_git(ctx.settings, repo), repo)


def _split(
    ctx: ControllerContext, session: Session, principal: Principal, dataset: str, config: str, split: str
) -> Split:
    found = _open(ctx, session, principal, dataset)
    if found.sha is None:
        raise BadRequest(f"the dataset {dataset} is empty")
    return found.split(config, split)


@router.get("/is-valid", summary="Whether the viewer can show a dataset")
def is_valid(dataset: str, ctx: CtxDep, session: SessionDep, principal: PrincipalDep) -> dict[str, bool]:
    """Whether the dataset has files the viewer reads (preview, viewer and search go together)."""
    readable = bool(_open(ctx, session, principal, dataset).layout)
    return {"preview": readable, "viewer": readable, "search": readable, "filter": False, "statistics": False}


@router.get("/splits", summary="A dataset's configs and splits")
def splits(dataset: str, ctx: CtxDep, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every config and split of the dataset, from its card's `configs` or its files' names."""
    found = _open(ctx, session, principal, dataset).layout
    listed = [
        {"dataset": dataset, "config": c, "split": s} for c, by_split in found.items() for s in by_split
    ]
    return {"splits": listed, "pending": [], "failed": []}


@router.get("/first-rows", summary="The first 100 rows of a split")
def first_rows(
    dataset: str, config: str, split: str, ctx: CtxDep, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The split's features and first rows."""
    found = _split(ctx, session, principal, dataset, config, split)
    page = found.rows(0, FIRST_ROWS)
    return {
        "dataset": dataset,
        "config": config,
        "split": split,
        "features": page["features"],
        "rows": page["rows"],
        "truncated": page["num_rows_total"] > FIRST_ROWS,
    }


@router.get("/rows", summary="A page of a split's rows")
def rows(
    dataset: str,
    config: str,
    split: str,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    offset: int = Query(0, ge=0),
    length: int = Query(MAX_PAGE, ge=0, le=MAX_PAGE),
) -> dict[str, Any]:
    """Rows `offset` to `offset + length` (at most 100) of the split."""
    return _split(ctx, session, principal, dataset, config, split).rows(offset, length)


@router.get("/search", summary="Rows of a split that contain a text")
def search(
    dataset: str,
    config: str,
    split: str,
    query: str,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    offset: int = Query(0, ge=0),
    length: int = Query(MAX_PAGE, ge=0, le=MAX_PAGE),
) -> dict[str, Any]:
    """A page of the rows whose text columns contain `query`, ignoring case."""
    return _split(ctx, session, principal, dataset, config, split).search(query, offset, length)


@router.get("/parquet", summary="A dataset's Parquet files")
def parquet(
    dataset: str, request: Request, ctx: CtxDep, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Each split's Parquet file at `refs/convert/parquet` (converted first if needed)."""
    repo = _dataset(session, principal, dataset)
    base = f"{public_base_url(request)}/datasets/{repo.full_name}/resolve/{quote(PARQUET_REF, safe='')}"
    files = [
        {
            "dataset": dataset,
            "config": file.config,
            "split": file.split,
            "url": f"{base}/{quote(file.path)}",
            "filename": file.path.rsplit("/", 1)[-1],
            "size": file.size,
        }
        for file in parquet_files(ctx, repo)
    ]
    return {"parquet_files": files, "pending": [], "failed": [], "partial": False}


@router.get("/size", summary="A dataset's size in rows and bytes")
def size(dataset: str, ctx: CtxDep, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """Rows and bytes of the dataset, of each config and of each split."""
    dataset_at = _open(ctx, session, principal, dataset)
    split_sizes = []
    for config, by_split in dataset_at.layout.items():
        for split_name, files in by_split.items():
            table = dataset_at.split(config, split_name).table
            original = dataset_at.original_bytes(files)
            split_sizes.append(
                {
                    "dataset": dataset,
                    "config": config,
                    "split": split_name,
                    "num_bytes_original_files": original,
                    "num_bytes_memory": table.nbytes,
                    "num_rows": table.num_rows,
                    "num_columns": table.num_columns,
                }
            )
    total = {
        key: sum(s[key] for s in split_sizes)
        for key in ("num_bytes_original_files", "num_bytes_memory", "num_rows")
    }
    configs = [
        {
            "dataset": dataset,
            "config": config,
            **{k: sum(s[k] for s in split_sizes if s["config"] == config) for k in total},
        }
        for config in dataset_at.layout
    ]
    return {
        "size": {"dataset": {"dataset": dataset, **total}, "configs": configs, "splits": split_sizes},
        "pending": [],
        "failed": [],
        "partial": False,
    }
