"""A space's volumes, made ready on this host: a bucket is its directory in the bucket store
(shared by every host, so its files follow the space wherever it runs); a repository is its
commit, unpacked once per commit into the agent's directory and mounted read-only."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from spacehub.agent.context import AgentContext
from spacehub.agent.drivers.base import Mount
from spacehub.build.context import extract_archive
from spacehub.config import APP_UID
from spacehub.queue.spec import VolumeMount


class VolumeUnavailable(Exception):
    """A volume cannot be mounted; the message says which and why (shown to the space's owner)."""


def host_mounts(agent: AgentContext, volumes: list[VolumeMount]) -> tuple[Mount, ...]:
    """The mounts that give the app its volumes; VolumeUnavailable for one that cannot be made."""
    if volumes and not agent.driver.mounts_volumes:
        raise VolumeUnavailable(f"volumes need the Docker driver; host {agent.host_id} runs apps without one")
    mounts = []
    for volume in volumes:
        if volume.problem:
            raise VolumeUnavailable(f"the volume at {volume.mount_path} cannot be mounted: {volume.problem}")
        if volume.kind == "bucket" and volume.bucket_dir is not None:
            source = bucket_directory(agent.settings.bucket_store, volume.bucket_dir)
        else:
            source = repo_folder(agent, volume)
        mounts.append(Mount(str(source), volume.mount_path, volume.read_only))
    return tuple(mounts)


def bucket_directory(store: Path, name: str) -> Path:
    """The bucket's directory, made if the hub has not yet (the store is shared), owned by the apps' user."""
    if not name.isdigit():
        raise VolumeUnavailable(f"bad bucket directory {name!r}")
    path = store / name
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid != APP_UID:
        with contextlib.suppress(PermissionError):
            os.chown(path, APP_UID, APP_UID)
    return path


def repo_folder(agent: AgentContext, volume: VolumeMount) -> Path:
    """The repository's commit unpacked on this host (once per commit), and the folder of it asked for."""
    if volume.repo_id is None or volume.sha is None:
        raise VolumeUnavailable(f"the volume at {volume.mount_path} names no commit")
    snapshots = agent.settings.agent_dir / "volumes" / f"repo-{volume.repo_id}"
    snapshot = snapshots / volume.sha
    if not snapshot.is_dir():
        snapshots.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=snapshots, prefix=".unpack-") as tmp:
            archive = Path(tmp) / "commit.tar"
            agent.hub.download_repo_archive(volume.repo_id, volume.sha, str(archive))
            unpacked = Path(tmp) / "files"
            extract_archive(archive, unpacked)  # refuses links and paths that leave it
            with contextlib.suppress(FileExistsError, OSError):
                unpacked.rename(snapshot)  # another start may have unpacked it meanwhile
        if not snapshot.is_dir():
            raise VolumeUnavailable(f"could not unpack {volume.source} at {volume.sha[:12]}")
    folder = (snapshot / volume.subpath).resolve()
    if not folder.is_relative_to(snapshot.resolve()) or not folder.is_dir():
        raise VolumeUnavailable(
            f"{volume.source} has no folder {volume.subpath!r} at {volume.sha[:12]} for {volume.mount_path}"
        )
    return folder
