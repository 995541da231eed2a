"""Buckets: storage outside git that spaces mount read-write. Records live in the database, files
in the bucket store (one directory per bucket id, shared by every host). Deleting a space never
touches a bucket; a bucket that spaces mount cannot be deleted until they stop mounting it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spacehub.controller import bucket_files
from spacehub.controller.access import can_read, can_write, may_act_as
from spacehub.controller.accounts import Principal, find_account, validate_name
from spacehub.controller.context import ControllerContext
from spacehub.controller.serializers import iso
from spacehub.db.models import Account, Bucket, Space
from spacehub.errors import Conflict, Forbidden, PayloadTooLarge, RepoNotFound, Unauthorized


def bucket_root(ctx: ControllerContext, bucket: Bucket) -> Path:
    """The bucket's directory in the bucket store (named by its id: renames never move files)."""
    return ctx.settings.bucket_store / str(bucket.id)


def namespace_of(session: Session, principal: Principal, namespace: str) -> Account | None:
    """The account `namespace` names; `me` is the caller's own."""
    if namespace == "me":
        if principal.account is None:
            raise Unauthorized("`me` names your own namespace: send a token")
        return principal.account
    return find_account(session, namespace)


def find_bucket(session: Session, owner: Account | None, name: str) -> Bucket | None:
    """The bucket `name` of `owner`, compared without case."""
    if owner is None:
        return None
    return session.scalar(
        select(Bucket).where(Bucket.owner_id == owner.id, func.lower(Bucket.name) == name.lower())
    )


def readable_bucket(session: Session, principal: Principal, namespace: str, name: str) -> Bucket:
    """The bucket, if it exists and `principal` may see it; RepoNotFound either way otherwise."""
    bucket = find_bucket(session, namespace_of(session, principal, namespace), name)
    if bucket is None or not can_read(session, principal, bucket):
        raise RepoNotFound(f"Bucket {namespace}/{name} not found")
    return bucket


def writable_bucket(session: Session, principal: Principal, namespace: str, name: str) -> Bucket:
    """The bucket, if `principal` may change it; Forbidden when it may only see it."""
    bucket = readable_bucket(session, principal, namespace, name)
    if not can_write(session, principal, bucket):
        raise Forbidden(f"you need a write token with access to {bucket.full_name}")
    return bucket


def create_bucket(
    ctx: ControllerContext, session: Session, principal: Principal, namespace: str, name: str, private: bool
) -> Bucket:
    """A new, empty bucket; Conflict when the namespace has one of that name."""
    if not principal.can_write:
        raise Forbidden("creating a bucket needs a write token")
    validate_name(name, "bucket name")
    owner = namespace_of(session, principal, namespace)
    if owner is None or not may_act_as(session, principal, owner, write=True):
        raise Forbidden(f"you cannot create buckets in the namespace {namespace!r}")
    if find_bucket(session, owner, name) is not None:
        raise Conflict(f"You already created this bucket: {owner.name}/{name}")
    bucket = Bucket(owner=owner, name=name, private=private, quota_bytes=ctx.settings.bucket_quota)
    session.add(bucket)
    session.flush()
    root = bucket_root(ctx, bucket)
    if root.exists():  # left behind by a crash between here and a rollback
        shutil.rmtree(root)
    bucket_files.ensure_root(root)
    return bucket


def list_buckets(
    session: Session, principal: Principal, namespace: str, search: str | None = None
) -> list[Bucket]:
    """The buckets of `namespace` that `principal` may see, by name."""
    owner = namespace_of(session, principal, namespace)
    if owner is None:
        return []
    query = select(Bucket).where(Bucket.owner_id == owner.id).order_by(func.lower(Bucket.name))
    if search:
        query = query.where(func.lower(Bucket.name).contains(search.lower(), autoescape=True))
    return [b for b in session.scalars(query) if can_read(session, principal, b)]


def spaces_mounting(session: Session, bucket: Bucket) -> list[str]:
    """The spaces that mount `bucket`, by name."""
    found = []
    for space in session.scalars(select(Space).where(Space.volumes.is_not(None))):
        if any(v["type"] == "bucket" and v["source"] == bucket.full_name for v in space.volumes or []):
            found.append(space.repo.full_name)
    return sorted(found)


def delete_bucket(ctx: ControllerContext, session: Session, bucket: Bucket) -> None:
    """Delete the bucket and its files; Conflict while a space mounts it."""
    mounting = spaces_mounting(session, bucket)
    if mounting:
        raise Conflict(
            f"{bucket.full_name} is mounted by {', '.join(mounting)}: remove it from their volumes first"
        )
    root = bucket_root(ctx, bucket)
    session.delete(bucket)
    session.flush()
    shutil.rmtree(root, ignore_errors=True)


def change_settings(
    session: Session, principal: Principal, bucket: Bucket, private: bool | None, quota: int | None
) -> None:
    """Make the bucket private or public; admins also change its quota."""
    if private is not None:
        bucket.private = private
    if quota is not None:
        if not principal.is_admin:
            raise Forbidden("only an administrator changes a bucket's quota")
        bucket.quota_bytes = quota


def is_full(ctx: ControllerContext, bucket: Bucket) -> bool:
    """Whether the bucket holds as much as its quota allows, or more (apps write past it until
    their next start, which mounts a full bucket read-only)."""
    return bucket_files.usage(bucket_root(ctx, bucket))[0] >= bucket.quota_bytes


def upload(ctx: ControllerContext, bucket: Bucket, path: str, source: BinaryIO, size: int) -> int:
    """Store a file of `size` bytes at `path` (replacing what is there); PayloadTooLarge when the
    bucket would pass its quota. Returns the bytes written."""
    root = bucket_root(ctx, bucket)
    used = bucket_files.usage(root)[0]
    existing = bucket_files.path_info(root, path)
    after = used - (existing.size if existing else 0) + size
    if after > bucket.quota_bytes:
        raise PayloadTooLarge(
            f"{bucket.full_name} holds {used:,} of its {bucket.quota_bytes:,} bytes: "
            f"{path} ({size:,} bytes) does not fit; delete files first"
        )
    return bucket_files.write_file(root, path, source)


def bucket_url(hub_url: str, bucket: Bucket) -> str:
    """The bucket's page (also the `url` the client parses the bucket's id from)."""
    return f"{hub_url}/buckets/{bucket.full_name}"


def bucket_json(ctx: ControllerContext, bucket: Bucket, hub_url: str) -> dict[str, Any]:
    """The bucket in the Hub's shape (`bucket_info`, `list_buckets`), with its quota."""
    size, count = bucket_files.usage(bucket_root(ctx, bucket))
    return {
        "id": bucket.full_name,
        "name": bucket.name,
        "author": bucket.owner.name,
        "private": bucket.private,
        "createdAt": iso(bucket.created_at),
        "size": size,
        "totalFiles": count,
        "quota": bucket.quota_bytes,
        "url": bucket_url(hub_url, bucket),
    }


def entry_json(entry: bucket_files.Entry) -> dict[str, Any]:
    """A file or folder of a bucket in the Hub's shape. `xetHash` is null: this hub serves bucket
    files over plain HTTP, so clients download them without the Xet protocol."""
    if entry.is_dir:
        return {"type": "directory", "path": entry.path, "uploadedAt": iso(entry.mtime)}
    return {
        "type": "file",
        "path": entry.path,
        "size": entry.size,
        "xetHash": None,
        "mtime": iso(entry.mtime),
        "uploadedAt": iso(entry.mtime),
    }
