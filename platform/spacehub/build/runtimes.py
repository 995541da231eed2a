"""Runtime base images (`runtimes/`), built once per host and reused by every build.

A push that only changes app code therefore rebuilds only the app's last layers: the Python, the
runtime and the SDK come from images this host already has."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors

from spacehub.build.dockercli import build_image
from spacehub.build.errors import BuildFailed
from spacehub.build.logsink import LogSink
from spacehub.config import Settings

log = logging.getLogger(__name__)

# The Debian release whose python3 is each version, for hosts without a registry.
BOOTSTRAP_SUITES = {"3.9": "bullseye", "3.11": "bookworm", "3.13": "trixie"}
SDK_PACKAGES = {"gradio": "gradio", "streamlit": "streamlit"}
# Installed with the SDK, as on the Hub: Gradio's "Sign in" (gr.LoginButton) needs its `oauth` extra.
SDK_EXTRAS = {"gradio": "[oauth]", "streamlit": ""}


def sdk_requirement(sdk: str, version: str, *, extras: bool = True) -> str:
    """The pip requirement of `sdk` at `version`; without `extras`, as a constraints file takes it."""
    return f"{SDK_PACKAGES[sdk]}{SDK_EXTRAS[sdk] if extras else ''}=={version}"


PYTHON_IMAGE = re.compile(
    r"^(?:docker\.io/)?(?:library/)?python:(?P<minor>3\.\d+)(?:\.\d+)?(?:-slim)?(?:-(?:bookworm|bullseye|trixie))?$"
)
_REGISTRY_CHECK_TTL = 600.0
_registry_checked: dict[str, tuple[float, bool]] = {}


def python_minor(version: str) -> str:
    """`3.11` for `3.11`, `3.11.4` or `3.11.4`-like input."""
    parts = version.split(".")
    return ".".join(parts[:2])


def definition_hash(*parts: str | bytes) -> str:
    """Short hash of what an image is built from: a changed runtimes/ Dockerfile, CA bundle or
    base gives a new tag, so hosts rebuild instead of reusing an outdated image."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:8]


def python_tag(minor: str) -> str:
    """The tag of the bare Python `minor` image."""
    return f"spacehub/python:{minor}"


def runtime_tag(minor: str, definition: str) -> str:
    """The tag of the Python `minor` runtime image; `definition` changes with what it is built from."""
    return f"spacehub/runtime:py{minor}-{definition}"


def sdk_tag(sdk: str, sdk_version: str, minor: str, definition: str, torch: str | None = None) -> str:
    """The tag of an SDK's image at `sdk_version` on Python `minor`, and on PyTorch when `torch` is set."""
    return f"spacehub/{sdk}:{sdk_version}-py{minor}" + (f"-{torch}" if torch else "") + f"-{definition}"


def torch_tag(torch_version: str, variant: str, minor: str, definition: str) -> str:
    """The tag of the PyTorch image (`cpu` or `cuda` variant) on Python `minor`."""
    return f"spacehub/torch:{torch_version}-{variant}-py{minor}-{definition}"


class Runtimes:
    """Builds runtime images on demand on this host, one builder at a time per image."""

    def __init__(self, settings: Settings, client: docker.DockerClient, cli: str):
        self.settings = settings
        self.client = client
        self.cli = cli
        self.lock_dir = settings.agent_dir / "locks"
        self.lock_dir.mkdir(parents=True, exist_ok=True)

    def has_image(self, tag: str) -> bool:
        """Whether the engine has an image tagged `tag`."""
        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    @contextmanager
    def _locked(self, tag: str) -> Iterator[None]:
        path = self.lock_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", tag) + ".lock")
        with path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure_sdk(
        self, sdk: str, sdk_version: str, python_version: str, log_writer: LogSink, torch: str | None = None
    ) -> str:
        """The image of `sdk==sdk_version` on Python `python_version` (over the `torch` runtime,
        `cpu` or `cuda`, when given), built if this host lacks it."""
        minor = python_minor(python_version)
        torch_label = f"torch{self.settings.torch_version}-{torch}" if torch else None
        base = (
            self.ensure_torch(torch, minor, log_writer) if torch else self.ensure_runtime(minor, log_writer)
        )
        requirement = sdk_requirement(sdk, sdk_version)
        definition = definition_hash(self._definition("sdk"), base, requirement)
        tag = sdk_tag(sdk, sdk_version, minor, definition, torch_label)
        if self.has_image(tag):
            return tag
        with self._locked(tag):
            if not self.has_image(tag):
                log_writer.write(f"==> Installing {sdk} {sdk_version} for Python {minor} (once per host)")
                build_image(
                    self.cli,
                    self.settings.runtimes_dir / "sdk",
                    tag,
                    log_writer,
                    build_args={
                        "BASE": base,
                        "SDK_REQUIREMENT": requirement,
                        "SDK_CONSTRAINT": sdk_requirement(sdk, sdk_version, extras=False),
                        **self.pip_build_args(),
                    },
                    timeout=self.settings.build_timeout,
                )
        return tag

    def ensure_torch(self, variant: str, minor: str, log_writer: LogSink) -> str:
        """PyTorch (`cpu` or `cuda` build) on the Python `minor` runtime."""
        version = self.settings.torch_version
        base = self.ensure_runtime(minor, log_writer)
        index = self.settings.torch_cpu_index_url if variant == "cpu" else ""
        tag = torch_tag(version, variant, minor, definition_hash(self._definition("torch"), base, index))
        if self.has_image(tag):
            return tag
        with self._locked(tag), tempfile.TemporaryDirectory(prefix="spacehub-torch-") as tmp:
            if self.has_image(tag):
                return tag
            log_writer.write(f"==> Installing torch {version} ({variant}) for Python {minor} (once per host)")
            context = Path(tmp)
            (context / "Dockerfile").write_text(
                (self.settings.runtimes_dir / "torch" / "Dockerfile").read_text()
            )
            wheels = context / "wheels"
            wheels.mkdir()
            if variant == "cpu":
                link_wheels(self.settings.pip_find_links, wheels, f"torch-{version}")
            build_args = {
                "BASE": base,
                "TORCH_REQUIREMENT": f"torch=={version}",
                "TORCH_VARIANT": variant,
                "TORCH_INDEX_URL": index,
                **self.pip_build_args(),
            }
            build_image(
                self.cli, context, tag, log_writer, build_args=build_args, timeout=self.settings.build_timeout
            )
        return tag

    def ensure_runtime(self, minor: str, log_writer: LogSink) -> str:
        """The Python `minor` runtime image (pip settings, CA bundle), built once per host."""
        base = self.ensure_python(minor, log_writer)
        bundle = self.settings.build_ca_bundle
        ca = bundle.read_bytes() if bundle is not None and bundle.exists() else b""
        tag = runtime_tag(minor, definition_hash(self._definition("python"), base, ca))
        if self.has_image(tag):
            return tag
        with self._locked(tag), tempfile.TemporaryDirectory(prefix="spacehub-runtime-") as tmp:
            if self.has_image(tag):
                return tag
            log_writer.write(f"==> Preparing the Python {minor} runtime (once per host)")
            context = Path(tmp)
            (context / "Dockerfile").write_text(
                (self.settings.runtimes_dir / "python" / "Dockerfile").read_text()
            )
            write_ca_certificates(self.settings.build_ca_bundle, context / "ca")
            build_image(
                self.cli,
                context,
                tag,
                log_writer,
                build_args={"BASE": base, **self.pip_build_args()},
                timeout=self.settings.build_timeout,
            )
        return tag

    def _definition(self, name: str) -> str:
        return (self.settings.runtimes_dir / name / "Dockerfile").read_text()

    def ensure_python(self, minor: str, log_writer: LogSink) -> str:
        """`spacehub/python:<minor>`: the official image from a registry, or the bootstrap."""
        tag = python_tag(minor)
        if self.has_image(tag):
            return tag
        with self._locked(tag):
            if self.has_image(tag):
                return tag
            official = f"python:{minor}-slim"
            if self.settings.runtime_source != "bootstrap" and self._pull(official, log_writer):
                self.client.images.get(official).tag(tag)
                return tag
            if self.settings.runtime_source == "registry":
                raise BuildFailed(f"could not pull {official} and SPACEHUB_RUNTIME_SOURCE=registry")
            self._bootstrap_python(minor, log_writer)
        return tag

    def ensure_dockerfile_bases(self, dockerfile: str, log_writer: LogSink) -> None:
        """Make `FROM python:X-slim` (and its usual spellings) resolvable without a registry, and
        trusting the operator's CA bundle (as the SDK runtimes do)."""
        for image in re.findall(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", dockerfile, re.M | re.I):
            match = PYTHON_IMAGE.match(image)
            if match is None or self._trusted(image):
                continue
            with self._locked(image):
                if self._trusted(image):
                    continue
                pulled = self.settings.runtime_source != "bootstrap" and self._pull(image, log_writer)
                base = image if pulled else self.ensure_python(match["minor"], log_writer)
                self._add_trust(base, image, log_writer)

    def _ca_definition(self) -> tuple[bytes, str]:
        bundle = self.settings.build_ca_bundle
        ca = bundle.read_bytes() if bundle is not None and bundle.exists() else b""
        return ca, definition_hash(self._definition("trusted"), ca)

    def _trusted(self, image: str) -> bool:
        """Whether the local `image` is one `_add_trust` made with today's CA bundle."""
        try:
            labels = self.client.images.get(image).labels or {}
        except docker.errors.ImageNotFound:
            return False
        return labels.get("spacehub.trusted") == self._ca_definition()[1]

    def _add_trust(self, base: str, tag: str, log_writer: LogSink) -> None:
        """`base` with the operator's CA certificates trusted, tagged `tag`."""
        _ca, definition = self._ca_definition()
        log_writer.write(f"==> Adding this host's CA certificates to {tag} (once per host)")
        with tempfile.TemporaryDirectory(prefix="spacehub-trusted-") as tmp:
            context = Path(tmp)
            (context / "Dockerfile").write_text(self._definition("trusted"))
            write_ca_certificates(self.settings.build_ca_bundle, context / "ca")
            build_image(
                self.cli,
                context,
                tag,
                log_writer,
                build_args={"BASE": base, "DEFINITION": definition},
                timeout=self.settings.build_timeout,
            )

    def _pull(self, image: str, log_writer: LogSink) -> bool:
        """Try the registry once in a while; a host without one should not wait on every build."""
        registry = image.split("/")[0] if "/" in image and "." in image.split("/")[0] else "docker.io"
        checked_at, reachable = _registry_checked.get(registry, (0.0, True))
        if not reachable and time.monotonic() - checked_at < _REGISTRY_CHECK_TTL:
            return False
        proc = subprocess.run(
            [self.cli, "pull", "--quiet", image], capture_output=True, text=True, timeout=600
        )
        ok = proc.returncode == 0
        if not ok:
            log_writer.write(f"==> {image} is not available from a registry; using the local bootstrap")
        _registry_checked[registry] = (time.monotonic(), ok)
        return ok

    def _bootstrap_python(self, minor: str, log_writer: LogSink) -> None:
        suite = BOOTSTRAP_SUITES.get(minor)
        if suite is None:
            available = ", ".join(BOOTSTRAP_SUITES)
            raise BuildFailed(
                f"Python {minor} is not available on this host: no registry is reachable to pull "
                f"python:{minor}-slim, and the local bootstrap provides Python {available}. "
                "Set `python_version` in README.md to one of these."
            )
        rootfs = f"spacehub/rootfs:{suite}"
        if not self.has_image(rootfs):
            log_writer.write(
                f"==> Bootstrapping Debian {suite} for Python {minor} (once per host, ~1 minute)"
            )
            script = self.settings.runtimes_dir / "bootstrap" / "rootfs.sh"
            proc = subprocess.Popen(
                ["sh", str(script), suite, rootfs, self.settings.debian_mirror],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={"DOCKER": self.cli, "PATH": _path()},
            )
            assert proc.stdout is not None
            tail: list[str] = []
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                tail = [*tail[-30:], line]
                if not line.startswith("I: Retrieving") and not line.startswith("I: Validating"):
                    log_writer.write(line)
            if proc.wait() != 0:
                raise BuildFailed("bootstrapping the base image failed:\n" + "\n".join(tail))
        build_image(
            self.cli,
            self.settings.runtimes_dir / "bootstrap",
            python_tag(minor),
            log_writer,
            build_args={"ROOTFS": rootfs},
        )

    def pip_build_args(self) -> dict[str, str]:
        """The build args that point pip at the configured package indexes."""
        args = {}
        if self.settings.pip_index_url:
            args["PIP_INDEX_URL"] = self.settings.pip_index_url
        if self.settings.pip_extra_index_url:
            args["PIP_EXTRA_INDEX_URL"] = self.settings.pip_extra_index_url
        return args


def _path() -> str:
    return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def link_wheels(wheelhouse: Path | None, destination: Path, prefix: str) -> None:
    """Wheels named `prefix*` from the operator's wheelhouse, hard-linked (or copied) into a context."""
    if wheelhouse is None or not wheelhouse.is_dir():
        return
    for wheel in wheelhouse.glob(f"{prefix}*.whl"):
        try:
            os.link(wheel, destination / wheel.name)
        except OSError:
            shutil.copy2(wheel, destination / wheel.name)


def write_ca_certificates(bundle: Path | None, directory: Path) -> None:
    """Split a PEM bundle into one file a certificate, as update-ca-certificates wants them."""
    directory.mkdir(parents=True, exist_ok=True)
    if bundle is None or not bundle.exists():
        return
    pem = bundle.read_text(errors="replace")
    certificates = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S)
    for number, certificate in enumerate(certificates):
        (directory / f"extra-{number:03d}.crt").write_text(certificate + "\n")
