"""The one settings object of every spacehub process (environment variables prefixed ``SPACEHUB_``)."""

from __future__ import annotations

import base64
import os
import secrets
import socket
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SOURCE_ROOT = Path(__file__).resolve().parents[2]
"""The checkout (or install) root that holds ``templates/`` and ``runtimes/``."""

SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SPACEHUB_",
        env_file=os.environ.get("SPACEHUB_ENV_FILE"),
        extra="ignore",
    )

    environment: Literal["development", "production"] = Field(
        "development", description="`production` refuses weak or missing secrets."
    )
    data_dir: Path = Field(
        Path("data"),
        description="Database, git repositories, build logs and generated secrets live here.",
    )
    namespace: str = Field(
        "spacehub",
        pattern=r"^[a-z][a-z0-9-]{0,30}$",
        description="Prefix of every Redis key and RQ queue, so that instances can share one Redis.",
    )

    # The edge proxy: the single public port.
    port: int = Field(8000, description="Public port of the edge proxy (hub and apps).")
    listen_hosts: list[str] = Field(
        ["0.0.0.0", "::"],
        description="Addresses the edge proxy listens on. App containers reach the hub through it.",
    )
    public_url: str | None = Field(
        None, description="Canonical URL of the hub, as browsers see it. Default http://localhost:PORT."
    )
    apps_domain: str | None = Field(
        None,
        description="Apps are served at {owner}-{name}.APPS_DOMAIN (subdomain routing). "
        "Default: the host of public_url.",
    )
    routing: Literal["subdomain", "path"] = Field(
        "subdomain",
        description="`subdomain`: every app on its own origin. `path`: apps under /app/{owner}/{name}/ "
        "on the hub's origin, for hosts without wildcard DNS.",
    )
    max_body_size: int = Field(
        5 * 1024**3, description="Largest request body the proxy forwards, in bytes (else 413)."
    )
    upstream_connect_timeout: float = Field(10.0, description="Seconds to connect to an app or the hub.")
    edge_data_path: Literal["auto", "haproxy", "python"] = Field(
        "auto",
        description="What serves running apps on the public port: `haproxy` (Debian's HAProxy, with the "
        "Python edge behind it for everything else), `python` (the Python edge alone), `auto` (HAProxy "
        "where it is installed).",
    )
    edge_threads: int | None = Field(
        None, ge=1, description="HAProxy's threads. Default: one per CPU of the edge's host."
    )

    # The controller (hub API, git, UI): internal only.
    controller_host: str = Field("127.0.0.1", description="Address the controller listens on.")
    controller_port: int | None = Field(None, description="Controller port. Default: PORT + 1.")
    database_url: str | None = Field(
        None,
        description="Database URL: `postgresql://user:password@host:port/db` (PostgreSQL, through "
        "psycopg 3, which spacehub installs) or any SQLAlchemy URL. Default: SQLite in DATA_DIR.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL. Unset: `spacehub up` starts a private Redis on a socket in DATA_DIR.",
    )
    admin_token: SecretStr | None = Field(
        None, description="When set, user `admin` exists and holds this write token."
    )
    internal_token: SecretStr | None = Field(
        None,
        description="Shared secret of controller, proxy and agents. Unset: generated in DATA_DIR.",
    )
    secrets_key: SecretStr | None = Field(
        None,
        description="Key that encrypts space secrets in the database (Fernet, url-safe base64 of 32 bytes). "
        "Unset: generated in DATA_DIR. Keep it apart from database backups.",
    )
    signup_enabled: bool = Field(True, description="Whether visitors may create accounts in the web UI.")
    max_repo_file_size: int = Field(
        10 * 1024**3, description="Largest single file accepted by a commit, in bytes."
    )
    buckets_dir: Path | None = Field(
        None,
        description="Where bucket files live. Every host mounts buckets from this path, so hosts on "
        "several machines need it on shared storage (NFS, CephFS) at the same path. Default "
        "DATA_DIR/buckets.",
    )
    bucket_quota: int = Field(
        10 * 1024**3,
        gt=0,
        description="Size a new bucket may grow to, in bytes (admins change it per bucket). Uploads "
        "through the hub beyond it are refused; an app sees a full bucket read-only from its next start.",
    )
    inference_flavor: str = Field(
        "cpu-basic",
        description="Hardware flavor of the model servers behind /hf-inference (the inference provider).",
    )
    inference_sleep_time: int = Field(
        600,
        description="Seconds a model server may go without requests before it sleeps (scale to zero); "
        "the next request wakes it.",
    )
    edge_url: str | None = Field(
        None,
        description="URL the controller reaches the edge proxy at, to forward inference requests to "
        "model servers. Default http://127.0.0.1:PORT.",
    )
    reconcile_interval: float = Field(5.0, description="Seconds between reconciler passes.")
    route_audit_interval: float = Field(
        60.0,
        gt=0,
        description="Seconds between the reconciler's comparisons of the whole route table with the "
        "database (about 1.5 s of a core per 10,000 spaces); after Redis lost everything, at once.",
    )
    controller_urls: list[str] = Field(
        [],
        description="Every controller's URL, when several share one database and repository store: the "
        "edge sends hub requests to the first that takes a connection, agents fetch builds the same "
        "way. Default: the one controller (CONTROLLER_HOST:CONTROLLER_PORT for the edge, HUB_URL for "
        "agents).",
    )
    leader_lease_seconds: float = Field(
        10.0,
        gt=0,
        description="How long the controller that runs the reconciler and applies reports holds that "
        "role without renewing it; another controller takes over at most this long after it dies.",
    )

    # Host agents.
    hub_url: str | None = Field(
        None, description="URL agents use to reach the controller. Default: the local controller."
    )
    host_id: str = Field(default_factory=socket.gethostname, description="Name of this host (agents).")
    agent_flavors: list[str] | None = Field(
        None, description="Hardware flavors this agent serves. Default: every CPU flavor."
    )
    agent_workers: int = Field(2, ge=1, description="Jobs (builds and starts) an agent runs at once.")
    agent_driver: Literal["docker", "process"] = Field(
        "docker",
        description="How the agent runs apps: `docker` (isolated containers) or `process` (a venv and a "
        "subprocess per app, for hosts without Docker; it does NOT isolate untrusted code).",
    )
    agent_cpus: float | None = Field(
        None,
        description="vCPUs this host offers to spaces' requests. Default: 4 per core (CPU is shared: an "
        "idle app needs almost none, a frozen one none).",
    )
    agent_memory: str | None = Field(
        None,
        description="Memory this host offers to spaces' requests (e.g. 64Gi). Default: its RAM less "
        "AGENT_MEMORY_RESERVE.",
    )
    agent_memory_reserve: str = Field(
        "1Gi",
        description="Memory a host keeps for itself. When its real free memory falls below this, the least "
        "recently visited spaces are put to sleep.",
    )
    agent_evict_after: float = Field(
        60.0,
        description="Seconds without visitors before a space may be put to sleep to make room for another.",
    )
    agent_gpus: list[str] | None = Field(
        None,
        description="GPU device ids this host offers. Default: those nvidia-smi lists (none without it).",
    )
    agent_gpu_model: str | None = Field(None, description="Model of the declared GPUs (default: detected).")
    gpu_mode: Literal["auto", "device-request", "env"] = Field(
        "auto",
        description="How GPUs reach containers: `device-request` (Docker's, needs the NVIDIA toolkit), `env` "
        "(NVIDIA_VISIBLE_DEVICES only), `auto` (device-request where the toolkit is installed).",
    )
    registry: str | None = Field(
        None,
        description="A container registry (host:port/prefix) agents push built images to and pull from, "
        "so that a space moving to another host does not rebuild.",
    )
    build_cache_limit: str = Field("20Gi", description="BuildKit cache kept on each host; older entries go.")
    hygiene_interval: float = Field(
        300.0, description="Seconds between an agent's disk clean-ups (old images, build cache)."
    )
    wake_timeout: float = Field(
        300.0,
        description="Seconds the proxy holds an API request while its app wakes, builds or starts.",
    )
    host_loss_grace: float = Field(
        10.0, description="Seconds after a host's heartbeat expires before its spaces are rescheduled."
    )
    advertise_address: str = Field(
        "127.0.0.1", description="Address the proxy uses to reach app ports published on this host."
    )
    apps_hub_url: str | None = Field(
        None,
        description="HF_ENDPOINT given to apps. Default: this host's edge proxy, through the apps "
        "network's gateway. Set it on hosts that run no proxy.",
    )
    app_blocked_networks: list[str] = Field(
        ["169.254.0.0/16"],
        description="Networks apps may not reach (cloud metadata by default; add your LAN ranges).",
    )
    flavors_file: Path | None = Field(None, description="YAML file of hardware flavors (operator-editable).")
    docker_cli: str | None = Field(
        None, description="docker CLI able to run BuildKit builds. Default: detected."
    )
    runtime_source: Literal["auto", "registry", "bootstrap"] = Field(
        "auto",
        description="Where Python base images come from: a registry (`python:X-slim`), a local "
        "debootstrap (`bootstrap`), or the registry with the bootstrap as fallback (`auto`).",
    )
    debian_mirror: str = Field("http://deb.debian.org/debian", description="Mirror for the bootstrap.")
    build_ca_bundle: Path | None = Field(
        SYSTEM_CA_BUNDLE if SYSTEM_CA_BUNDLE.exists() else None,
        description="Extra CA bundle trusted by builds and apps (corporate TLS interception).",
    )
    pip_index_url: str | None = Field(None, description="pip index for builds (PIP_INDEX_URL).")
    pip_extra_index_url: str | None = Field(None, description="Extra pip index for builds.")
    pip_find_links: Path | None = Field(
        None,
        description="A wheelhouse folder on agent hosts; the torch runtime installs from it first "
        "(where a CPU torch wheel lies, builds need no torch download at all).",
    )
    torch_version: str = Field("2.13.0", description="PyTorch of the torch runtimes.")
    torch_cpu_index_url: str = Field(
        "https://download.pytorch.org/whl/cpu",
        description="Where CPU builds of torch come from (empty: only the wheelhouse and PyPI). "
        "GPU flavors take PyPI's CUDA build.",
    )
    guard_build_network: bool = Field(
        True,
        description="Also firewall Docker's default bridge, where build steps run: they then reach only "
        "the hub's public port on this host.",
    )
    default_python_version: str = Field("3.11", description="Python of spaces that do not set one.")
    default_gradio_version: str = Field("6.31.0", description="Gradio of spaces without sdk_version.")
    default_streamlit_version: str = Field("1.67.0", description="Streamlit of spaces without sdk_version.")
    build_timeout: int = Field(3600, description="Seconds a build may take.")
    default_startup_timeout: int = Field(
        1800, description="Seconds an app may take to become healthy (startup_duration_timeout)."
    )
    drain_seconds: float = Field(
        2.0, description="Seconds an old container keeps serving after traffic switched away."
    )
    heartbeat_interval: float = Field(5.0, description="Seconds between agent heartbeats.")

    templates_dir: Path = Field(SOURCE_ROOT / "templates", description="SDK templates and starters.")
    runtimes_dir: Path = Field(SOURCE_ROOT / "runtimes", description="Base image definitions.")

    @model_validator(mode="after")
    def _refuse_weak_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            for name in ("admin_token", "internal_token"):
                value = getattr(self, name)
                if value is not None and len(value.get_secret_value()) < 24:
                    raise ValueError(f"SPACEHUB_{name.upper()} must be at least 24 characters in production")
            if self.internal_token is None:
                raise ValueError("SPACEHUB_INTERNAL_TOKEN must be set in production")
            if self.secrets_key is None:
                raise ValueError("SPACEHUB_SECRETS_KEY must be set in production (see `spacehub settings`)")
        return self

    # Derived values -------------------------------------------------------------------------------

    @cached_property
    def resolved_data_dir(self) -> Path:
        """The data directory as an absolute path, created if missing."""
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def resolved_controller_port(self) -> int:
        """The controller's port: its own setting, else the public port plus one."""
        return self.controller_port if self.controller_port is not None else self.port + 1

    @property
    def resolved_public_url(self) -> str:
        """The hub's URL as browsers see it, without a trailing slash."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def public_scheme(self) -> str:
        """The scheme browsers use (`http` or `https`); cookies are marked secure under https."""
        return urlsplit(self.resolved_public_url).scheme

    @property
    def public_host(self) -> str:
        """The host name of the public URL (lowercase; empty for a URL without one)."""
        return urlsplit(self.resolved_public_url).hostname or ""

    @property
    def resolved_apps_domain(self) -> str:
        """The domain under which apps get their own subdomains: its setting, else the public URL's host."""
        return (self.apps_domain or self.public_host or "localhost").lower()

    @property
    def public_port(self) -> int | None:
        """Port browsers use; None when it is the scheme's default."""
        parts = urlsplit(self.resolved_public_url)
        return parts.port

    @property
    def resolved_database_url(self) -> str:
        """The database URL: its setting, else SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'spacehub.db'}"

    @property
    def resolved_redis_url(self) -> str:
        """The Redis URL: its setting, else the private Redis's socket in the data directory."""
        return self.redis_url or f"unix://{self.resolved_data_dir / 'redis.sock'}"

    @property
    def resolved_edge_url(self) -> str:
        """The edge proxy's URL as the controller reaches it, without a trailing slash."""
        return (self.edge_url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def resolved_hub_url(self) -> str:
        """The URL agents reach the controller at: its setting, else the local controller."""
        return (self.hub_url or f"http://127.0.0.1:{self.resolved_controller_port}").rstrip("/")

    def controllers_from(self, default: str) -> list[str]:
        """The controllers' URLs in order of preference: CONTROLLER_URLS, else `default` alone."""
        return [url.rstrip("/") for url in self.controller_urls] or [default.rstrip("/")]

    @cached_property
    def resolved_internal_token(self) -> str:
        """The secret shared by controller, proxy and agents: its setting, else one kept in the data dir."""
        if self.internal_token is not None:
            return self.internal_token.get_secret_value()
        return read_or_create_secret(self.resolved_data_dir / "internal-token")

    @cached_property
    def resolved_secrets_key(self) -> str:
        """The key space secrets are encrypted with: configured, or made once in the data directory."""
        if self.secrets_key is not None:
            return self.secrets_key.get_secret_value()
        return read_or_create_secret(
            self.resolved_data_dir / "secrets-key", base64.urlsafe_b64encode(os.urandom(32)).decode()
        )

    @cached_property
    def instance_id(self) -> str:
        """Identifies this installation's containers on shared Docker engines."""
        return read_or_create_secret(self.resolved_data_dir / "instance-id", secrets.token_hex(6))

    @property
    def repos_dir(self) -> Path:
        """Where the bare git repositories live."""
        return self.resolved_data_dir / "repos"

    @property
    def bucket_store(self) -> Path:
        """Where bucket files live: one directory per bucket, named by its id."""
        return (self.buckets_dir or self.resolved_data_dir / "buckets").expanduser().resolve()

    @property
    def logs_dir(self) -> Path:
        """Where the controller keeps logs (finished builds' logs, under builds/)."""
        return self.resolved_data_dir / "logs"

    @property
    def agent_dir(self) -> Path:
        """Where agents keep their own files: locks, and the process driver's runtimes, builds and apps."""
        return self.resolved_data_dir / "agent"


# The user and group apps run as (the Docker driver's `--user`); they own bucket files.
APP_UID = 1000


def read_or_create_secret(path: Path, new_value: str | None = None) -> str:
    """The value stored in `path`, created (readable by its owner only) on first use."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = new_value or secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


@lru_cache
def get_settings() -> Settings:
    """Settings of this process, read once from the environment."""
    return Settings()


def settings_reference() -> str:
    """A Markdown table of every setting, its variable, default and meaning (for the README)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if field.default_factory is not None:
            default = "(this host's name)" if name == "host_id" else "(computed)"
        elif (
            isinstance(default, Path) and default.is_absolute() and str(default).startswith(str(SOURCE_ROOT))
        ):
            default = default.relative_to(SOURCE_ROOT).as_posix() + "/"
        elif default is None:
            default = ""
        shown = f"`{default}`" if default != "" else ""
        rows.append(f"| `SPACEHUB_{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)
