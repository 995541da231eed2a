"""README.md front matter: the YAML block between `---` lines at the top of the file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_FRONT_MATTER = 64 * 1024  # bytes: Hugging Face cards keep theirs to a few KiB
MAX_VALUES = 10_000  # values once aliases are expanded: a 400-byte YAML bomb expands to millions
_FRONT_MATTER = re.compile(
    r"\A\ufeff?---[ \t]*\r?\n(?P<body>.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*$", re.S | re.M
)


class FrontMatterError(ValueError):
    """The front matter is not valid YAML or not a mapping; `line` is 1-based in README.md."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"README.md line {self.line}: {self.message}" if self.line else f"README.md: {self.message}"


@dataclass
class FrontMatter:
    """Parsed front matter, with the README line of every top-level key and the raw text of scalars
    (so that `python_version: 3.10` stays "3.10" instead of the float 3.1)."""

    data: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    raw_scalars: dict[str, str] = field(default_factory=dict)
    present: bool = False

    def line_of(self, key: str) -> int | None:
        """The README line of the top-level `key`, if it is there."""
        return self.lines.get(key)


def json_safe(value: Any) -> Any:
    """YAML values (dates...) made JSON-serialisable, for storing and serving card data."""
    return json.loads(json.dumps(value, default=str))


def expanded_size(root: yaml.Node) -> int:
    """How many values a YAML node graph holds once every alias is expanded, counted without
    expanding anything; a cycle (an alias inside its own anchor) counts as too many."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            return MAX_VALUES + 1
        visiting.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        visiting.discard(key)
        sizes[key] = min(total, MAX_VALUES + 1)
        return sizes[key]

    return size(root)


def split_readme(text: str) -> tuple[str | None, int, str]:
    """(front matter text or None, README line where it starts, the rest of the README)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return None, 0, text
    return match.group("body"), 2, text[match.end() :].lstrip("\r\n")


def parse_front_matter(readme: str) -> FrontMatter:
    """The front matter of a README, bounded in size and in what its aliases expand to;
    FrontMatterError, with its line, when it is invalid."""
    body, first_line, _ = split_readme(readme)
    if body is None or not body.strip():
        return FrontMatter(present=body is not None)
    if len(body.encode("utf-8", "surrogateescape")) > MAX_FRONT_MATTER:
        raise FrontMatterError(
            f"the front matter is larger than {MAX_FRONT_MATTER // 1024} KiB: keep long texts in the body",
            first_line,
        )
    try:
        node = yaml.compose(body, Loader=yaml.SafeLoader)  # aliases stay shared here: nothing expands
        if node is not None and expanded_size(node) > MAX_VALUES:
            raise FrontMatterError(
                f"YAML aliases (*name) expand the front matter to more than {MAX_VALUES:,} values: "
                "write the values out instead",
                first_line,
            )
        data = yaml.load(body, Loader=yaml.SafeLoader)
    except RecursionError:
        raise FrontMatterError("the front matter is nested too deeply", first_line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = first_line + mark.line if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise FrontMatterError(f"invalid YAML in the front matter: {problem}", line) from exc
    except yaml.YAMLError as exc:
        raise FrontMatterError(f"invalid YAML in the front matter: {exc}", first_line) from exc
    if data is None:
        return FrontMatter(present=True)
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise FrontMatterError("the front matter must be a mapping of `key: value` lines", first_line)
    result = FrontMatter(data={}, present=True)
    for key_node, value_node in node.value:
        key = str(key_node.value)
        result.lines[key] = first_line + key_node.start_mark.line
        if isinstance(value_node, yaml.ScalarNode):
            result.raw_scalars[key] = value_node.value
    result.data = {str(k): v for k, v in data.items()}
    return result
