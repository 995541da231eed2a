"""A dataset's Parquet conversion, as the Hub lists it: `/api/datasets/{id}/parquet` (all configs,
one config, one split, or one file, which redirects to it at `refs/convert/parquet`)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from spacehub.controller.parquet import PARQUET_REF, ParquetFile, parquet_files
from spacehub.controller.repos import get_readable_repo
from spacehub.db.models import RepoType
from spacehub.errors import NotFound
from spacehub.http.deps import CtxDep, PrincipalDep, SessionDep
from spacehub.http.urls import public_base_url

router = APIRouter(prefix="/api/datasets/{owner}/{name}/parquet", tags=["datasets"])


def _files(
    owner: str, name: str, ctx: CtxDep, session: SessionDep, principal: PrincipalDep
) -> list[ParquetFile]:
    return parquet_files(ctx, get_readable_repo(session, principal, RepoType.DATASET, owner, name))


def _url(request: Request, owner: str, name: str, file: ParquetFile, index: int) -> str:
    where = f"{quote(file.config)}/{quote(file.split)}/{index}.parquet"
    return f"{public_base_url(request)}/api/datasets/{owner}/{name}/parquet/{where}"


def _by_split(
    request: Request, owner: str, name: str, files: list[ParquetFile]
) -> dict[str, dict[str, list[str]]]:
    listed: dict[str, dict[str, list[str]]] = {}
    for file in files:
        urls = listed.setdefault(file.config, {}).setdefault(file.split, [])
        urls.append(_url(request, owner, name, file, len(urls)))
    return listed


@router.get("", summary="The Parquet files of every config and split")
def all_configs(
    owner: str, name: str, request: Request, ctx: CtxDep, session: SessionDep, principal: PrincipalDep
) -> dict[str, dict[str, list[str]]]:
    """Config -> split -> the URLs of its Parquet files (the dataset is converted first if needed)."""
    return _by_split(request, owner, name, _files(owner, name, ctx, session, principal))


@router.get("/{config}", summary="The Parquet files of one config")
def one_config(
    owner: str,
    name: str,
    config: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, list[str]]:
    """Split -> the URLs of its Parquet files; 404 for a config the dataset does not have."""
    found = _by_split(request, owner, name, _files(owner, name, ctx, session, principal))
    if config not in found:
        raise NotFound(f"the dataset {owner}/{name} has no config {config!r} in Parquet")
    return found[config]


@router.get("/{config}/{split}", summary="The Parquet files of one split")
def one_split(
    owner: str,
    name: str,
    config: str,
    split: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> list[str]:
    """The URLs of the split's Parquet files; 404 for a split the dataset does not have."""
    found = _by_split(request, owner, name, _files(owner, name, ctx, session, principal))
    urls = found.get(config, {}).get(split)
    if not urls:
        raise NotFound(f"no Parquet file for split {split!r} of config {config!r}")
    return urls


@router.get(
    "/{config}/{split}/{index}.parquet",
    summary="One Parquet file",
    response_class=RedirectResponse,
    status_code=302,
    responses={302: {"description": "The file at refs/convert/parquet (Location)"}},
)
def one_file(
    owner: str,
    name: str,
    config: str,
    split: str,
    index: int,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> RedirectResponse:
    """A redirect to the file at `refs/convert/parquet`."""
    files = [
        f for f in _files(owner, name, ctx, session, principal) if (f.config, f.split) == (config, split)
    ]
    if not 0 <= index < len(files):
        raise NotFound(f"no Parquet file {index} for split {split!r} of config {config!r}")
    revision = quote(PARQUET_REF, safe="")
    return RedirectResponse(
        f"/datasets/{owner}/{name}/resolve/{revision}/{quote(files[index].path)}", status_code=302
    )
