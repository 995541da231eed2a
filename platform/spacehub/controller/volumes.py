"""A space's volumes: buckets (read-write) and model, dataset or space repositories (read-only, at a
revision) mounted in its container, set as the Hub's `PUT /api/spaces/{id}/volumes` sends them.

Bucket data lives in the bucket store, which every host mounts at the same path, so it follows a
space to whatever host starts it (restart, rebuild, wake, a move to another host)."""

from __future__ import annotations

import posixpath
from typing import Any

from sqlalchemy.orm import Session

from spacehub.controller import buckets
from spacehub.controller.access import can_read, can_write
from spacehub.controller.accounts import Principal, find_account
from spacehub.controller.context import ControllerContext
from spacehub.controller.inference import SYSTEM_ORG
from spacehub.controller.repos import find_repo, get_readable_repo, open_git
from spacehub.controller.spaces import redeploy_if_deployed
from spacehub.db.models import Bucket, Repo, RepoType, Space, TokenRole
from spacehub.errors import BadRequest, Forbidden, NotFound
from spacehub.queue.spec import VolumeMount

MAX_VOLUMES = 10
TYPES = ("bucket", "model", "dataset", "space")
# Mount points that would hide what the app's image needs to run (or what the kernel provides).
RESERVED = ("/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/run")
APP_DIR = "/home/user/app"


def set_volumes(
    ctx: ControllerContext, session: Session, principal: Principal, space: Space, raw: object
) -> None:
    """Mount exactly these volumes from the next start on (the app restarts with them)."""
    if space.sdk == "static":
        raise BadRequest("static spaces have no container to mount volumes in")
    if not isinstance(raw, list) or len(raw) > MAX_VOLUMES:
        raise BadRequest(f"`volumes` is a list of at most {MAX_VOLUMES} volume objects")
    volumes = [normal_volume(ctx, session, principal, item) for item in raw]
    check_mount_paths([v["mountPath"] for v in volumes])
    for problem in filter(None, (owner_problem(session, space, v) for v in volumes)):
        raise Forbidden(problem)
    space.volumes = volumes or None
    redeploy_if_deployed(ctx, session, space)


def delete_volumes(ctx: ControllerContext, session: Session, space: Space) -> None:
    """Mount nothing from the next start on; BadRequest when nothing is mounted."""
    if not space.volumes:
        raise BadRequest(f"{space.repo.full_name} has no volumes")
    space.volumes = None
    redeploy_if_deployed(ctx, session, space)


def normal_volume(
    ctx: ControllerContext, session: Session, principal: Principal, item: object
) -> dict[str, Any]:
    """One volume object, checked against what exists and what the caller may use, in the Hub's shape."""
    if not isinstance(item, dict):
        raise BadRequest("each volume is an object with `type`, `source` and `mountPath`")
    kind, source, mount_path = item.get("type"), item.get("source"), item.get("mountPath")
    if kind not in TYPES:
        raise BadRequest(f"volume `type` is one of {', '.join(TYPES)} (got {kind!r})")
    if not isinstance(source, str) or source.count("/") != 1:
        raise BadRequest(f"volume `source` is `owner/name` (got {source!r})")
    owner, name = source.split("/")
    read_only, path, revision = item.get("readOnly"), item.get("path"), item.get("revision")
    if read_only is not None and not isinstance(read_only, bool):
        raise BadRequest("volume `readOnly` is true or false")
    volume: dict[str, Any] = {"type": kind, "mountPath": normal_mount_path(mount_path)}
    if kind == "bucket":
        if revision is not None:
            raise BadRequest("buckets have no revisions: drop `revision`")
        if path:
            raise BadRequest(
                "a bucket is mounted whole: `path` is not supported for buckets (apps write links "
                "into buckets, so a folder of one is no safe mount source)"
            )
        bucket = buckets.readable_bucket(session, principal, owner, name)
        if not read_only and not can_write(session, principal, bucket):
            raise Forbidden(f"mounting {bucket.full_name} read-write needs write access to it")
        volume.update(source=bucket.full_name, readOnly=bool(read_only))
        return volume
    if read_only is False:
        raise BadRequest(f"{kind} volumes are read-only (their files are a git revision)")
    if revision is not None and (not isinstance(revision, str) or not revision.strip()):
        raise BadRequest("volume `revision` is a branch, tag or commit")
    repo = get_readable_repo(session, principal, RepoType(kind), owner, name)
    if open_git(ctx.settings, repo).resolve(revision or "main") is None:
        raise NotFound(f"{kind} {repo.full_name} has no revision {revision or 'main'!r}")
    volume.update(source=repo.full_name, readOnly=True, revision=revision or "main")
    if path:
        volume["path"] = normal_subpath(path)
    return volume


def normal_mount_path(value: object) -> str:
    """An absolute mount point inside the container that hides nothing the app needs."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise BadRequest(f"volume `mountPath` is an absolute path such as /data (got {value!r})")
    if any(ord(c) < 32 for c in value) or ":" in value or "\\" in value or len(value) > 512:
        raise BadRequest(f"volume `mountPath` {value!r} has a control character, ':' or '\\'")
    path = posixpath.normpath(value)
    if ".." in value.split("/"):
        raise BadRequest(f"volume `mountPath` {value!r} contains '..'")
    if path == "/" or any(path == r or path.startswith(r + "/") for r in RESERVED):
        raise BadRequest(f"volume `mountPath` {path} would hide the system's own files: use /data or similar")
    if path == APP_DIR or APP_DIR.startswith(path + "/"):
        raise BadRequest(f"volume `mountPath` {path} would hide the app's code in {APP_DIR}")
    return path


def normal_subpath(value: object) -> str:
    """A folder inside a repository, normalised."""
    if not isinstance(value, str) or "\x00" in value or ".." in value.split("/"):
        raise BadRequest(f"volume `path` {value!r} is not a folder inside the repository")
    return value.strip("/")


def check_mount_paths(paths: list[str]) -> None:
    """No two volumes at the same place or one inside another."""
    for i, one in enumerate(paths):
        for other in paths[i + 1 :]:
            if one == other or one.startswith(other + "/") or other.startswith(one + "/"):
                raise BadRequest(f"volumes at {one} and {other} overlap: give each its own folder")


def owner_problem(session: Session, space: Space, volume: dict[str, Any]) -> str | None:
    """Why the space's owner may not mount `volume` (it must read each source, and write each bucket
    it mounts read-write, at every start: access taken away ends the mount); None when it may. The
    inference provider's servers mount the models readers asked for: it checks each request."""
    if space.repo.owner.name == SYSTEM_ORG:
        return None
    owner = Principal(account=space.repo.owner, role=TokenRole.WRITE)
    account, name = volume["source"].split("/")
    found: Repo | Bucket | None
    if volume["type"] == "bucket":
        found = buckets.find_bucket(session, find_account(session, account), name)
    else:
        found = find_repo(session, RepoType(volume["type"]), account, name)
    if found is None or not can_read(session, owner, found):
        return f"{space.repo.owner.name} may not read {volume['type']} {volume['source']}"
    if volume["type"] == "bucket" and not volume["readOnly"] and not can_write(session, owner, found):
        return f"{space.repo.owner.name} may not write to bucket {volume['source']}: mount it read-only"
    return None


def mounts_for(ctx: ControllerContext, session: Session, space: Space) -> list[VolumeMount]:
    """The space's volumes resolved for the host that starts it: a bucket's directory, a
    repository's commit. A source that went away, or that the space's owner may no longer use,
    is reported, for the agent to say so."""
    mounts = []
    for volume in space.volumes or []:
        kind, source, target = volume["type"], volume["source"], volume["mountPath"]
        mount = VolumeMount(kind=kind, source=source, mount_path=target, read_only=volume["readOnly"])
        owner, name = source.split("/")
        refused = owner_problem(session, space, volume)
        if kind == "bucket":
            bucket = buckets.find_bucket(session, find_account(session, owner), name)
            if bucket is None or refused:
                mount.problem = refused or f"bucket {source} no longer exists"
            else:
                mount.bucket_dir = str(bucket.id)
                if not mount.read_only and buckets.is_full(ctx, bucket):
                    mount.read_only = True
                    mount.note = (
                        f"bucket {source} is full (its quota is {bucket.quota_bytes:,} bytes): "
                        f"mounted read-only at {target} until files are deleted"
                    )
        else:
            repo = find_repo(session, RepoType(kind), owner, name)
            sha = open_git(ctx.settings, repo).resolve(volume["revision"]) if repo is not None else None
            if repo is None or sha is None or refused:
                mount.problem = refused or f"{kind} {source} at {volume['revision']!r} no longer exists"
            else:
                mount.repo_id, mount.sha, mount.subpath = repo.id, sha, volume.get("path", "")
        mounts.append(mount)
    return mounts
