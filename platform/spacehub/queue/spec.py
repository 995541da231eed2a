"""What a deploy job needs to know, served by the controller to the agent that runs the job.

Jobs on the queue carry only a build id; the agent fetches this spec when it starts the job, so
secrets never sit in Redis and a job that waited in the queue still gets the newest variables."""

from __future__ import annotations

from pydantic import BaseModel

from spacehub.queue.flavors import Flavor


class OAuthClient(BaseModel):
    """A space's credentials for signing its visitors in with the hub (`hf_oauth: true`)."""

    client_id: str
    client_secret: str
    scopes: str


class VolumeMount(BaseModel):
    """One volume of a space, resolved for the host that starts it: a bucket's directory in the
    bucket store, or a repository's commit (and a folder of it)."""

    kind: str  # bucket, model, dataset or space
    source: str  # owner/name, for messages
    mount_path: str
    read_only: bool
    bucket_dir: str | None = None
    repo_id: int | None = None
    sha: str | None = None
    subpath: str = ""
    note: str | None = None  # what the app's log should say about it (mounted read-only: why)
    problem: str | None = None  # why it cannot be mounted (its source is gone)


class DeploySpec(BaseModel):
    build_id: int
    space_id: int
    space_name: str
    subdomain: str
    sha: str
    current: bool
    factory: bool
    sdk: str
    app_file: str
    app_port: int | None
    sdk_version: str | None
    python_version: str | None
    startup_timeout: int
    flavor: Flavor
    title: str | None
    app_url: str
    root_path: str
    preload_from_hub: list[str] = []
    variables: dict[str, str] = {}
    secrets: dict[str, str] = {}
    oauth: OAuthClient | None = None
    volumes: list[VolumeMount] = []

    @property
    def owner(self) -> str:
        """The space's owner: the first part of its `owner/name`."""
        return self.space_name.split("/", 1)[0]

    @property
    def repo_name(self) -> str:
        """The space's repository name: the second part of its `owner/name`."""
        return self.space_name.split("/", 1)[1]
