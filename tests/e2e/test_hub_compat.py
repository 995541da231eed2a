"""The Hugging Face tools, unmodified, against spacehub: gradio_client and the hf CLI with
HF_ENDPOINT, transformers loading models from spacehub's own repos, and secrets kept secret."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from huggingface_hub import HfApi

from spacehub.config import SOURCE_ROOT
from tests.e2e.apps import DOCKER_FILES, gradio_files
from tests.utils.platform import Platform


def run_python(platform: Platform, code: str, token: str | None = None, timeout: float = 300) -> str:
    """Run `code` in a fresh interpreter with HF_ENDPOINT set (the clients read it at import)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "SPACEHUB_"))}
    env.update(
        HF_ENDPOINT=platform.url, HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(platform.data_dir / "hf-home")
    )
    if token:
        env["HF_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_gradio_client_resolves_spaces_by_name(platform: Platform, gradio_space: str) -> None:
    code = f"""
        from gradio_client import Client
        print(Client({gradio_space!r}, verbose=False).predict("by name", api_name="/echo"))
    """
    assert run_python(platform, code) == "v1:by name"


def test_gradio_client_and_a_private_space(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, private=True)
    platform.push(space, gradio_files("private"))
    platform.wait_stage(space, "RUNNING")
    code = f"""
        from gradio_client import Client
        print(Client({space!r}, token={platform.admin_token!r}, verbose=False).predict("x", api_name="/echo"))
    """
    assert run_python(platform, code) == "private:x"
    refused = f"""
        from gradio_client import Client
        try:
            Client({space!r}, verbose=False)
            print("opened")
        except Exception as exc:
            print("refused", type(exc).__name__)
    """
    assert run_python(platform, refused).startswith("refused")
    # And not through the app's own URL either.
    host = platform.app_url(space)
    assert httpx.get(host + "/config", trust_env=False).status_code == 404
    assert (
        httpx.get(
            host + "/config", trust_env=False, headers={"Authorization": f"Bearer {platform.admin_token}"}
        ).status_code
        == 200
    )


def test_the_hf_cli_uploads_a_space(platform: Platform, space_name: str, tmp_path) -> None:
    space = platform.create_space(space_name)
    folder = tmp_path / "app"
    folder.mkdir()
    for name, content in gradio_files("cli").items():
        (folder / name).write_text(content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=platform.url,
        HF_TOKEN=platform.admin_token,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(tmp_path / "hf-home"),
    )
    hf = shutil.which("hf", path=str(Path(sys.executable).parent)) or "hf"
    result = subprocess.run(
        [hf, "upload", space, str(folder), ".", "--repo-type=space"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    platform.wait_stage(space, "RUNNING")
    assert Client(platform.app_url(space), verbose=False).predict("y", api_name="/echo") == "cli:y"


def hf_cli(platform: Platform, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run the `hf` CLI against the platform, as its admin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=platform.url,
        HF_TOKEN=platform.admin_token,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(home),
    )
    hf = shutil.which("hf", path=str(Path(sys.executable).parent)) or "hf"
    return subprocess.run([hf, *args], env=env, capture_output=True, text=True, timeout=300)


def test_wait_for_space_returns_when_the_space_runs_or_failed(
    platform: Platform, space_name: str, tmp_path: Path
) -> None:
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    good = platform.create_space(space_name + "-good", sdk="docker")
    bad = platform.create_space(space_name + "-bad", sdk="docker")
    platform.push(good, DOCKER_FILES)
    broken = {**DOCKER_FILES, "Dockerfile": "FROM python:3.11-slim\nRUN exit 3\n"}
    platform.push(bad, broken)

    assert api.wait_for_space(good, timeout=300).stage == "RUNNING"
    failed = api.wait_for_space(bad, timeout=300)
    assert failed.stage == "BUILD_ERROR"
    assert "exit" in (failed.raw.get("errorMessage") or ""), failed.raw

    assert hf_cli(platform, "spaces", "wait", good, "--timeout", "60s", home=tmp_path).returncode == 0
    result = hf_cli(platform, "spaces", "wait", bad, "--timeout", "60s", home=tmp_path)
    assert result.returncode != 0
    assert "BUILD_ERROR" in result.stdout + result.stderr


SECRET_APP = """
import hashlib
import os

import gradio as gr


def fingerprint(_):
    secret = os.environ.get("API_SECRET", "")
    return hashlib.sha256(secret.encode()).hexdigest() if secret else "unset"


gr.Interface(fingerprint, "text", "text", api_name="fingerprint").launch()
"""


def test_secrets_reach_the_app_and_nowhere_else(platform: Platform, space_name: str) -> None:
    secret = "sk-spacehub-e2e-" + hashlib.sha256(space_name.encode()).hexdigest()[:20]
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    space = platform.create_space(space_name)
    platform.push(space, {"README.md": "---\nsdk: gradio\n---\n", "app.py": SECRET_APP})
    first = platform.wait_stage(space, "RUNNING")
    assert Client(platform.app_url(space), verbose=False).predict("", api_name="/fingerprint") == "unset"

    api.add_space_secret(space, "API_SECRET", secret)
    api.add_space_variable(space, "VISIBLE", "yes")
    runtime = platform.wait_stage(space, "RUNNING")
    assert runtime["sha"] == first["sha"]
    expected = hashlib.sha256(secret.encode()).hexdigest()
    assert Client(platform.app_url(space), verbose=False).predict("", api_name="/fingerprint") == expected

    seen: list[str] = []
    with platform.client() as client:
        for path in (
            f"/api/spaces/{space}",
            f"/api/spaces/{space}/runtime",
            f"/api/spaces/{space}/secrets",
            f"/api/spaces/{space}/variables",
            "/api/spaces?full=true",
            f"/api/spaces/{space}/tree/main",
        ):
            seen.append(client.get(path).text)
    seen.append(platform.logs(space, "build"))
    seen.append(platform.logs(space, "run"))
    seen.extend(p.read_text(errors="replace") for p in (platform.data_dir / "logs").rglob("*.log*"))
    seen.extend(p.read_text(errors="replace") for p in (platform.data_dir / "logs").rglob("*.jsonl"))
    assert all(secret not in text for text in seen)
    assert json.loads(seen[2]) == {
        "API_SECRET": {
            "key": "API_SECRET",
            "description": None,
            "updatedAt": json.loads(seen[2])["API_SECRET"]["updatedAt"],
        }
    }


@pytest.fixture(scope="module")
def tiny_model(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A randomly initialised text classifier, saved with save_pretrained and uploaded as a model repo."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "spacehub", "runs", "transformers", "good", "bad"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    api.create_repo("admin/tiny-classifier", exist_ok=True)
    api.upload_folder(repo_id="admin/tiny-classifier", folder_path=folder)
    return "admin/tiny-classifier"


def test_transformers_loads_a_model_from_spacehub(platform: Platform, tiny_model: str) -> None:
    code = f"""
        from transformers import pipeline
        result = pipeline("text-classification", model={tiny_model!r})("spacehub runs transformers")
        print(result[0]["label"])
    """
    assert run_python(platform, code) in ("NEGATIVE", "POSITIVE")


def test_a_transformers_space_builds_on_the_torch_runtime(
    platform: Platform, tiny_model: str, space_name: str
) -> None:
    starter = SOURCE_ROOT / "templates" / "gradio-transformers" / "starter"
    files = {p.name: p.read_text() for p in starter.iterdir()}
    files["README.md"] = files["README.md"].replace(
        "short_description:", f"preload_from_hub:\n  - {tiny_model}\nshort_description:", 1
    )
    files["app.py"] = (
        files["app.py"]
        .replace(
            "from transformers import pipeline",
            "from huggingface_hub import try_to_load_from_cache\nfrom transformers import pipeline\n"
            "PRELOADED = isinstance(try_to_load_from_cache(os.environ['MODEL_ID'], 'config.json'), str)",
        )
        .replace(
            'return {result["label"]',
            'print("preloaded:", PRELOADED, flush=True)\n    return {result["label"]',
        )
    )
    space = platform.create_space(space_name)
    HfApi(endpoint=platform.url, token=platform.admin_token).add_space_variable(space, "MODEL_ID", tiny_model)
    platform.push(space, files)
    platform.wait_stage(space, "RUNNING", timeout=1500)
    labels = Client(platform.app_url(space), verbose=False).predict("good", api_name="/classify")
    assert {item["label"] for item in labels["confidences"]} == {"NEGATIVE", "POSITIVE"}
    build_log = platform.logs(space, "build")
    assert "torch" in build_log.split("==> Building")[-1].splitlines()[0]  # built on the torch runtime
    assert "preloaded: True" in platform.logs(space, "run")
