"""The dataset viewer's data, read from a dataset repository's own files at its head: configs and
splits (from the card's `configs`, else from file names, as `datasets` infers them), features,
pages of rows and a substring search. CSV, TSV, JSON Lines, JSON arrays and Parquet are read with
pyarrow; a split is read once per commit and kept in a small cache."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from spacehub.db.models import Repo
from spacehub.errors import NotFound, PayloadTooLarge
from spacehub.repos.git import GitRepo

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
SPLIT_WORDS = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
               "dev": "validation", "test": "test", "testing": "test", "eval": "test"}  # fmt: skip
SPLIT_ORDER = ("train", "validation", "test")
MAX_SPLIT_BYTES = 100 * 1024 * 1024  # larger splits wait for a Parquet conversion the viewer lacks
MAX_PAGE = 100
Layout = dict[str, dict[str, list[str]]]  # config -> split -> data files


def data_files(paths: list[str]) -> list[str]:
    """The files of a repository the viewer can read."""
    return [p for p in paths if PurePosixPath(p).suffix.lower() in FORMATS]


def _matching(patterns: Any, files: list[str]) -> list[str]:
    patterns = [patterns] if isinstance(patterns, str) else [p for p in patterns or [] if isinstance(p, str)]
    return sorted({f for f in files for pattern in patterns if fnmatch.fnmatch(f, pattern)})


def _split_of(path: str) -> str:
    words = re.split(r"[/_.\-]+", path.lower())
    return next((SPLIT_WORDS[w] for w in words if w in SPLIT_WORDS), "train")


def layout(card: dict[str, Any], paths: list[str]) -> Layout:
    """Configs and their splits' files: the card's `configs` where it has them, else one `default`
    config whose splits come from words in the file names (train, validation, test)."""
    files = data_files(paths)
    found: Layout = {}
    configs = card.get("configs")
    if isinstance(configs, list) and configs:
        for config in configs:
            if not isinstance(config, dict):
                continue
            name = str(config.get("config_name") or "default")
            declared = config.get("data_files")
            if isinstance(declared, list) and declared and all(isinstance(d, dict) for d in declared):
                splits = {str(d.get("split") or "train"): _matching(d.get("path"), files) for d in declared}
            else:
                splits = {"train": _matching(declared, files)}
            found[name] = {split: matched for split, matched in splits.items() if matched}
        return {name: splits for name, splits in found.items() if splits}
    by_name: dict[str, list[str]] = {}
    for path in files:
        by_name.setdefault(_split_of(path), []).append(path)
    ordered = {name: by_name[name] for name in SPLIT_ORDER if name in by_name}
    return {"default": ordered} if ordered else {}


class UnreadableData(NotFound):
    error_code = "UnreadableData"


def _read(path: str, content: bytes) -> pa.Table:
    kind = FORMATS[PurePosixPath(path).suffix.lower()]
    source = pa.BufferReader(content)
    if kind == "parquet":
        return pq.read_table(source)
    if kind in ("csv", "tsv"):
        options = pa_csv.ParseOptions(delimiter="\t" if kind == "tsv" else ",")
        return pa_csv.read_csv(source, parse_options=options)
    if kind == "json" and content.lstrip()[:1] == b"[":
        return pa.Table.from_pylist(json.loads(content))
    return pa_json.read_json(source)


@lru_cache(maxsize=4)  # whole tables: a few splits at a time
def read_split(repo_path: str, sha: str, files: tuple[str, ...]) -> pa.Table:
    """The rows of a split's files at commit `sha`, as one table (cached per commit)."""
    git = GitRepo(Path(repo_path))
    entries = [git.entry(sha, path) for path in files]
    if sum(e.size for e in entries if e is not None) > MAX_SPLIT_BYTES:
        raise PayloadTooLarge(f"the split's files exceed {MAX_SPLIT_BYTES // 2**20} MiB, the viewer's limit")
    tables = []
    for path, entry in zip(files, entries, strict=True):
        if entry is None:
            continue
        try:
            tables.append(_read(path, git.read_blob(entry.oid)))
        except (pa.ArrowInvalid, ValueError, json.JSONDecodeError) as exc:
            raise UnreadableData(f"{path} cannot be read: {exc}") from None
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})


def feature_type(arrow_type: pa.DataType) -> dict[str, Any]:
    """A column's type as the viewer describes it (`datasets`' Value dtypes)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        dtype = "string"
    elif pa.types.is_floating(arrow_type):
        dtype = f"float{arrow_type.bit_width}"
    elif pa.types.is_boolean(arrow_type):
        dtype = "bool"
    else:
        dtype = str(arrow_type)
    return {"dtype": dtype, "_type": "Value"}


@dataclass
class Split:
    dataset: str
    config: str
    split: str
    table: pa.Table

    def features(self) -> list[dict[str, Any]]:
        """The columns: index, name and type."""
        return [
            {"feature_idx": i, "name": field.name, "type": feature_type(field.type)}
            for i, field in enumerate(self.table.schema)
        ]

    def rows(self, offset: int, length: int, table: pa.Table | None = None) -> dict[str, Any]:
        """A page of rows (at most MAX_PAGE), as `/rows` answers it."""
        table = self.table if table is None else table
        length = max(0, min(length, MAX_PAGE))
        page = table.slice(offset, length).to_pylist() if offset < table.num_rows else []
        return {
            "features": self.features(),
            "rows": [
                {"row_idx": offset + i, "row": row, "truncated_cells": []} for i, row in enumerate(page)
            ],
            "num_rows_total": table.num_rows,
            "num_rows_per_page": MAX_PAGE,
            "partial": False,
        }

    def search(self, query: str, offset: int, length: int) -> dict[str, Any]:
        """The rows with `query` in a text column (ignoring case), a page of them."""
        text_columns = [
            name
            for name, kind in zip(self.table.column_names, self.table.schema.types, strict=True)
            if pa.types.is_string(kind) or pa.types.is_large_string(kind)
        ]
        mask = None
        for name in text_columns:
            hits = pc.fill_null(pc.match_substring(self.table[name], query, ignore_case=True), False)
            mask = hits if mask is None else pc.or_(mask, hits)
        found = self.table.filter(mask) if mask is not None else self.table.slice(0, 0)
        return self.rows(offset, length, found)


@dataclass
class DatasetAtHead:
    """A dataset repository at its head, listed once: its commit (None when empty) and its configs'
    splits' files."""

    name: str
    git: GitRepo
    sha: str | None
    layout: Layout

    @classmethod
    def of(cls, git: GitRepo, repo: Repo) -> DatasetAtHead:
        """The repository's head and what the viewer reads there."""
        sha = git.head()
        found = layout(repo.card or {}, [e.path for e in git.files(sha)]) if sha else {}
        return cls(repo.full_name, git, sha, found)

    def split(self, config: str, split: str) -> Split:
        """One split, read; NotFound for a config or split the dataset does not have."""
        files = self.layout.get(config, {}).get(split)
        if not files or self.sha is None:
            raise NotFound(f"the dataset {self.name} has no split {split!r} in config {config!r}")
        return Split(self.name, config, split, read_split(str(self.git.path), self.sha, tuple(files)))

    def original_bytes(self, files: list[str]) -> int:
        """The size of these files at the head, as stored in the repository."""
        entries = [self.git.entry(self.sha, f) for f in files] if self.sha else []
        return sum(e.size for e in entries if e is not None)
