"""README.md front matter: the YAML block between `---` lines at the top of the file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

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


def split_readme(text: str) -> tuple[str | None, int, str]:
    """(front matter text or None, README line where it starts, the rest of the README)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return None, 0, text
    return match.group("body"), 2, text[match.end() :].lstrip("\r\n")


def parse_front_matter(readme: str) -> FrontMatter:
    """The front matter of a README; FrontMatterError, with its line, when it is invalid."""
    body, first_line, _ = split_readme(readme)
    if body is None or not body.strip():
        return FrontMatter(present=body is not None)
    try:
        node = yaml.compose(body, Loader=yaml.SafeLoader)
        data = yaml.load(body, Loader=yaml.SafeLoader)
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
