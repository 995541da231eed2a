import io
import tarfile

import pytest

from spacehub.build.context import (
    SECRETS_DIGEST_ARG,
    extract_archive,
    keyed_by_secrets,
    needs_torch,
    render_sdk_dockerfile,
    requirement_names,
    secrets_digest,
    without_syntax_directive,
)
from spacehub.build.dockercli import failure_summary
from spacehub.build.errors import BuildFailed
from spacehub.build.runtimes import PYTHON_IMAGE, python_minor, write_ca_certificates
from spacehub.config import SOURCE_ROOT
from spacehub.spec.config import PreloadEntry

BUILDKIT_FAILURE = """#7 [3/4] RUN pip install -r /tmp/spacehub/requirements.txt
#7 1.482 ERROR: Could not find a version that satisfies the requirement no-such-package-xyz (from versions: none)
#7 1.482 ERROR: No matching distribution found for no-such-package-xyz
#7 ERROR: executor failed running [/bin/sh -c pip install -r /tmp/spacehub/requirements.txt]: exit code: 1
------
 > [3/4] RUN pip install -r /tmp/spacehub/requirements.txt:
#7 1.482 ERROR: Could not find a version that satisfies the requirement no-such-package-xyz (from versions: none)
#7 1.482 ERROR: No matching distribution found for no-such-package-xyz
------
error: failed to solve: executor failed running [/bin/sh -c pip install -r /tmp/spacehub/requirements.txt]: exit code: 1"""


def test_the_failure_summary_is_the_failing_step() -> None:
    summary = failure_summary(["#6 [2/4] COPY x y", "#6 DONE 0.0s", *BUILDKIT_FAILURE.splitlines()])
    assert summary.splitlines()[0] == "[3/4] RUN pip install -r /tmp/spacehub/requirements.txt"
    assert "ERROR: No matching distribution found for no-such-package-xyz" in summary
    assert summary.endswith("exit code: 1")
    assert "COPY" not in summary


def test_a_failure_outside_a_step_shows_the_tail() -> None:
    summary = failure_summary(
        ["#1 [internal] load build definition", "error: failed to read dockerfile: nope"]
    )
    assert summary.endswith("error: failed to read dockerfile: nope")


def test_the_syntax_directive_is_dropped() -> None:
    text, dropped = without_syntax_directive("# syntax=docker/dockerfile:1.4\nFROM python:3.11-slim\n")
    assert dropped and text == "FROM python:3.11-slim\n"
    assert without_syntax_directive("FROM x\n") == ("FROM x\n", False)


def test_the_gradio_template(tmp_path) -> None:
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "packages.txt").write_text("ffmpeg\n# comment\nlibsm6\n")
    dockerfile = render_sdk_dockerfile(
        SOURCE_ROOT / "templates", "gradio", base_image="base:1", app_file='my "app".py', source=tmp_path
    )
    assert dockerfile.startswith("FROM base:1\n")
    assert "apt-get install -y --no-install-recommends ffmpeg libsm6" in dockerfile
    assert "pip install -r /tmp/spacehub/requirements.txt" in dockerfile
    assert "pre-requirements" not in dockerfile
    assert dockerfile.rstrip().endswith('CMD ["python", "my \\"app\\".py"]')
    # Requirements are installed before the app is copied: app-only changes reuse that layer.
    assert dockerfile.index("requirements.txt") < dockerfile.index("COPY --chown=1000:1000 . /home/user/app")


def test_preload_from_hub_in_the_template(tmp_path) -> None:
    preload = [PreloadEntry.parse("alice/tiny"), PreloadEntry.parse("bob/model config.json,model.bin abc123")]
    dockerfile = render_sdk_dockerfile(
        SOURCE_ROOT / "templates",
        "streamlit",
        base_image="b",
        app_file="app.py",
        source=tmp_path,
        preload=preload,
    )
    assert "ARG HF_ENDPOINT" in dockerfile
    assert (
        """'[{"repo_id": "alice/tiny", "files": [], "revision": null}, {"repo_id": "bob/model", "files": ["config.json", "model.bin"], "revision": "abc123"}]'"""
        in dockerfile
    )
    assert dockerfile.index("snapshot_download") < dockerfile.index("COPY --chown=1000:1000 . /home/user/app")
    assert dockerfile.rstrip().endswith('CMD ["streamlit", "run", "app.py"]')


def test_torch_users_are_recognised(tmp_path) -> None:
    assert requirement_names(
        "Torch>=2\n# c\ntransformers[sentencepiece]==4.0\n-r other.txt\nsentence_transformers\n"
    ) == {"torch", "transformers", "sentence-transformers"}
    (tmp_path / "requirements.txt").write_text("numpy\ngradio\n")
    assert not needs_torch(tmp_path)
    (tmp_path / "requirements.txt").write_text("numpy\ndiffusers\n")
    assert needs_torch(tmp_path)


def test_bad_packages_fail_the_build(tmp_path) -> None:
    (tmp_path / "packages.txt").write_text("ffmpeg && curl evil\n")
    with pytest.raises(BuildFailed, match=r"packages\.txt line 1"):
        render_sdk_dockerfile(
            SOURCE_ROOT / "templates", "streamlit", base_image="b", app_file="app.py", source=tmp_path
        )


def test_archives_cannot_escape(tmp_path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        data = b"owned"
        info = tarfile.TarInfo("../escape.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(tarfile.TarError):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_ca_bundles_are_split_one_certificate_a_file(tmp_path) -> None:
    bundle = tmp_path / "bundle.pem"
    cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    bundle.write_text(f"# one\n{cert}\n# two\n{cert}\n")
    write_ca_certificates(bundle, tmp_path / "ca")
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == ["extra-000.crt", "extra-001.crt"]


def test_python_names() -> None:
    assert python_minor("3.11.4") == "3.11"
    for name in ("python:3.11-slim", "python:3.11", "docker.io/library/python:3.11.4-slim-bookworm"):
        match = PYTHON_IMAGE.match(name)
        assert match is not None and match["minor"] == "3.11"
    assert PYTHON_IMAGE.match("node:20-slim") is None


def test_every_stage_of_a_dockerfile_is_keyed_by_the_secrets() -> None:
    dockerfile = (
        "FROM python:3.11-slim \\\n    AS deps\n"
        "RUN --mount=type=secret,id=TOKEN pip download private\n"
        "from deps\n"
        "COPY . /app\n"
    )
    keyed = keyed_by_secrets(dockerfile)
    assert keyed == (
        "FROM python:3.11-slim \\\n    AS deps\n"
        f"ARG {SECRETS_DIGEST_ARG}\n"
        "RUN --mount=type=secret,id=TOKEN pip download private\n"
        "from deps\n"
        f"ARG {SECRETS_DIGEST_ARG}\n"
        "COPY . /app\n"
    )
    key = b"k" * 32
    assert secrets_digest(key, {"A": "1", "B": "2"}) == secrets_digest(key, {"B": "2", "A": "1"})
    assert secrets_digest(key, {"A": "1"}) != secrets_digest(key, {"A": "2"})
    assert secrets_digest(key, {"A": "1"}) != secrets_digest(b"o" * 32, {"A": "1"})
