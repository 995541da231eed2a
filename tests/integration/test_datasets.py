"""`datasets.load_dataset` against spacehub's dataset repos, unmodified, with HF_ENDPOINT set: CSV,
JSON Lines and Parquet files, splits and configs from the dataset card, private datasets."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
from huggingface_hub import CommitOperationAdd, HfApi

from tests.utils.platform import Platform
from tests.utils.waiting import wait_until

CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train.csv
  - split: test
    path: data/test.csv
- config_name: small
  data_files:
  - split: train
    path: data/test.csv
---
# Tiny
"""


def client_env(platform: Platform, token: str | None, home: str) -> dict[str, str]:
    """The environment of a fresh interpreter that uses the platform as its Hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "SPACEHUB_"))}
    env.update(HF_ENDPOINT=platform.url, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1")
    env["HF_HOME"] = str(platform.data_dir / home)
    if token:
        env["HF_TOKEN"] = token
    return env


def load(platform: Platform, call: str, token: str | None = None) -> dict[str, list[dict[str, object]]]:
    """Each split's rows (`rows` for one split) as the `datasets` call returns them, run in a
    fresh interpreter with HF_ENDPOINT set (the libraries read it at import)."""
    env = client_env(platform, token, "hf-datasets-home")
    code = f"""
        import json
        import datasets
        loaded = datasets.{call}
        splits = {{"rows": loaded}} if isinstance(loaded, datasets.Dataset) else loaded
        print(json.dumps({{name: split.to_list() for name, split in splits.items()}}, default=str))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def parquet_bytes(rows: list[dict[str, object]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def commit_carded_data(api: HfApi, repo: str) -> None:
    """The CARD's two configs' files: train has two rows, test one."""
    api.create_commit(
        repo,
        repo_type="dataset",
        commit_message="data",
        operations=[
            CommitOperationAdd("README.md", CARD.encode()),
            CommitOperationAdd("data/train.csv", b"text,label\nhello,1\nbye,0\n"),
            CommitOperationAdd("data/test.csv", b"text,label\nagain,1\n"),
        ],
    )


def test_load_dataset_reads_csv_jsonl_and_parquet_with_configs_and_splits(
    platform: Platform, space_name: str
) -> None:
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    repo = api.create_repo(f"{space_name}-data", repo_type="dataset").repo_id
    commit_carded_data(api, repo)
    assert load(platform, f"load_dataset({repo!r})") == {
        "train": [{"text": "hello", "label": 1}, {"text": "bye", "label": 0}],
        "test": [{"text": "again", "label": 1}],
    }
    assert load(platform, f"load_dataset({repo!r}, 'small')") == {"train": [{"text": "again", "label": 1}]}

    events = [{"kind": "click", "n": 1}, {"kind": "view", "n": 2}]
    lines = api.create_repo(f"{space_name}-jsonl", repo_type="dataset").repo_id
    for index, event in enumerate(events):
        api.upload_file(
            path_or_fileobj=json.dumps(event).encode() + b"\n",
            path_in_repo=f"events/part-{index}.jsonl",
            repo_id=lines,
            repo_type="dataset",
        )
    assert load(platform, f"load_dataset({lines!r}, split='train')") == {"rows": events}

    rows = [{"city": "Oslo", "temp": -3.5}, {"city": "Lima", "temp": 19.0}]
    table = api.create_repo(f"{space_name}-parquet", repo_type="dataset", private=True).repo_id
    api.upload_file(
        path_or_fileobj=parquet_bytes(rows),
        path_in_repo="data/train-00000-of-00001.parquet",
        repo_id=table,
        repo_type="dataset",
    )
    assert load(platform, f"load_dataset({table!r})", token=platform.admin_token) == {"train": rows}
    denied = subprocess.run(
        [sys.executable, "-c", f"import datasets; datasets.load_dataset({table!r})"],
        env=client_env(platform, None, "hf-anonymous-home"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert denied.returncode != 0 and "doesn't exist" in denied.stderr, denied.stderr[-2000:]


def test_the_viewer_api_pages_searches_and_sizes_a_dataset(platform: Platform, space_name: str) -> None:
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    repo = api.create_repo(f"{space_name}-viewer", repo_type="dataset", private=True).repo_id
    rows = [{"text": f"row {i}" + (" needle" if i % 50 == 0 else ""), "n": i} for i in range(250)]
    train = "text,n\n" + "".join(f"{r['text']},{r['n']}\n" for r in rows)
    api.create_commit(
        repo,
        repo_type="dataset",
        commit_message="data",
        operations=[
            CommitOperationAdd("data/train.csv", train.encode()),
            CommitOperationAdd("data/test-00000.parquet", parquet_bytes([{"text": "held out", "n": -1}])),
        ],
    )
    auth = {"Authorization": f"Bearer {platform.admin_token}"}

    def get(path: str, **params: object) -> dict:
        with platform.client() as client:
            response = client.get(f"/viewer/{path}", params={"dataset": repo, **params}, headers=auth)
        assert response.status_code == 200, response.text
        return dict(response.json())

    assert get("is-valid")["viewer"] is True
    assert get("splits")["splits"] == [
        {"dataset": repo, "config": "default", "split": "train"},
        {"dataset": repo, "config": "default", "split": "test"},
    ]
    first = get("first-rows", config="default", split="train")
    assert [f["name"] for f in first["features"]] == ["text", "n"] and first["truncated"] is True
    assert first["features"][0]["type"] == {"dtype": "string", "_type": "Value"}
    assert [r["row"] for r in first["rows"]] == rows[:100]
    page = get("rows", config="default", split="train", offset=200, length=100)
    assert [r["row"] for r in page["rows"]] == rows[200:] and page["num_rows_total"] == 250
    assert page["rows"][0]["row_idx"] == 200
    found = get("search", config="default", split="train", query="NEEDLE")
    assert [r["row"]["n"] for r in found["rows"]] == [0, 50, 100, 150, 200] and found["num_rows_total"] == 5
    assert get("rows", config="default", split="test")["rows"][0]["row"] == {"text": "held out", "n": -1}
    size = get("size")["size"]
    assert size["dataset"]["num_rows"] == 251 and len(size["splits"]) == 2

    with platform.client("") as anonymous:
        assert anonymous.get("/viewer/splits", params={"dataset": repo}).status_code == 404
    with platform.client() as client:
        missing = client.get("/viewer/rows", params={"dataset": repo, "config": "default", "split": "nope"})
        assert missing.status_code == 404 and "no split 'nope'" in missing.text
        assert (
            client.get(
                "/viewer/rows", params={"dataset": repo, "config": "default", "split": "train", "length": 101}
            ).status_code
            == 400
        )


def test_a_pushed_dataset_is_converted_to_parquet(platform: Platform, space_name: str) -> None:
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    repo = api.create_repo(f"{space_name}-convert", repo_type="dataset").repo_id
    commit_carded_data(api, repo)
    converts = wait_until(
        lambda: api.list_repo_refs(repo, repo_type="dataset").converts, timeout=60, what="the conversion"
    )
    assert [(c.name, c.ref) for c in converts] == [("parquet", "refs/convert/parquet")]
    with platform.client() as client:
        listed = client.get(f"/api/datasets/{repo}/parquet").json()
        assert {config: sorted(splits) for config, splits in listed.items()} == {
            "default": ["test", "train"],
            "small": ["train"],
        }
        (url,) = listed["default"]["train"]
        assert url == f"{platform.url}/api/datasets/{repo}/parquet/default/train/0.parquet"
        assert client.get(f"/api/datasets/{repo}/parquet/default/train").json() == [url]
        assert client.get(f"/api/datasets/{repo}/parquet/nope").status_code == 404
        downloaded = client.get(url.removeprefix(platform.url), follow_redirects=True)
        assert pq.read_table(io.BytesIO(downloaded.content)).to_pylist() == [
            {"text": "hello", "label": 1},
            {"text": "bye", "label": 0},
        ]
        viewer = client.get("/viewer/parquet", params={"dataset": repo}).json()["parquet_files"]
        assert sorted((f["config"], f["split"], f["filename"]) for f in viewer) == [
            ("default", "test", "0000.parquet"),
            ("default", "train", "0000.parquet"),
            ("small", "train", "0000.parquet"),
        ]
    assert load(platform, f"load_dataset({repo!r}, revision='refs/convert/parquet', data_dir='default')") == {
        "train": [{"text": "hello", "label": 1}, {"text": "bye", "label": 0}],
        "test": [{"text": "again", "label": 1}],
    }

    # A new push is converted again; the conversion keeps its history, each naming its source.
    before = converts[0].target_commit
    head = api.upload_file(
        path_or_fileobj=b"text,label\nonly,2\n",
        path_in_repo="data/test.csv",
        repo_id=repo,
        repo_type="dataset",
    ).oid
    wait_until(
        lambda: api.list_repo_refs(repo, repo_type="dataset").converts[0].target_commit != before,
        timeout=60,
        what="the new conversion",
    )
    converted = api.list_repo_commits(repo, repo_type="dataset", revision="refs/convert/parquet")
    assert len(converted) == 2 and head in converted[0].message
