"""A space's configuration, typed, from its README front matter (Hugging Face's keys)."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spacehub.spec.frontmatter import FrontMatter, FrontMatterError, parse_front_matter

Sdk = Literal["gradio", "streamlit", "docker", "static"]
SDKS: tuple[str, ...] = get_args(Sdk)
# What `hf_oauth_scopes` may add to `openid profile` (the Hub's list).
OAuthScope = Literal["email", "read-repos", "write-repos", "manage-repos", "inference-api", "read-billing"]
Color = Literal["red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"]
COLORS: tuple[str, ...] = get_args(Color)

# Keys whose value is a version: read from the YAML source text, so 3.10 is not the float 3.1.
VERSION_KEYS = ("sdk_version", "python_version")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)?\s*$", re.I)
_DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
_ALLOWED_CUSTOM_HEADERS = {
    "cross-origin-embedder-policy": {"unsafe-none", "require-corp", "credentialless"},
    "cross-origin-opener-policy": {"same-origin", "same-origin-allow-popups", "unsafe-none"},
    "cross-origin-resource-policy": {"same-site", "same-origin", "cross-origin"},
}


class ConfigError(ValueError):
    """The README configuration is invalid; the message names the key and its line."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_duration(value: str | int | float) -> int:
    """Seconds in a duration such as `30m`, `1h`, `90s` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30m or 1h")
    if isinstance(value, int | float):
        return int(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"expected a duration such as 30m or 1h, got {value!r}")
    number, unit = match.groups()
    return int(float(number) * _DURATION_UNITS[(unit or "s").lower()])


def _safe_relative_path(value: str) -> str:
    path = value.strip()
    parts = path.replace("\\", "/").split("/")
    if not path or path.startswith("/") or ".." in parts or parts[0] == ".git":
        raise ValueError(f"must be a path inside the repository, got {value!r}")
    return "/".join(p for p in parts if p not in ("", "."))


class PreloadEntry(BaseModel):
    """One `preload_from_hub` item: `repo_id`, `repo_id file1,file2` or `repo_id files sha`."""

    repo_id: str
    files: list[str] = []
    revision: str | None = None

    @classmethod
    def parse(cls, item: str) -> PreloadEntry:
        """The entry an item of `preload_from_hub` describes; ValueError for a malformed one."""
        parts = item.split()
        if not parts or len(parts) > 3 or not re.match(r"^[\w.-]+/[\w.-]+$", parts[0]):
            raise ValueError(f"items are `owner/name [file1,file2 [revision]]`, got {item!r}")
        files = [f for f in parts[1].split(",") if f] if len(parts) > 1 else []
        return cls(repo_id=parts[0], files=files, revision=parts[2] if len(parts) == 3 else None)


class SpaceConfig(BaseModel):
    """Hugging Face's Spaces configuration keys; unknown keys are kept (they end up in cardData)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    title: str | None = None
    emoji: str | None = None
    colorFrom: Color | None = None
    colorTo: Color | None = None
    sdk: Sdk | None = None
    sdk_version: str | None = None
    python_version: str | None = Field(None, pattern=r"^3\.\d{1,2}(\.\d{1,2})?$")
    app_file: str | None = None
    app_port: int | None = Field(None, ge=1, le=65535)
    base_path: str | None = Field(None, pattern=r"^/")
    fullWidth: bool | None = None
    header: Literal["mini", "default"] | None = None
    short_description: str | None = None
    models: list[str] | None = None
    datasets: list[str] | None = None
    tags: list[str] | None = None
    thumbnail: str | None = None
    pinned: bool | None = None
    license: str | None = None
    suggested_hardware: str | None = None
    suggested_storage: str | None = None
    disable_embedding: bool | None = None
    startup_duration_timeout: str | None = None
    custom_headers: dict[str, str] | None = None
    preload_from_hub: list[str] | None = None
    hf_oauth: bool | None = None
    hf_oauth_scopes: list[OAuthScope] | None = None
    hf_oauth_expiration_minutes: int | None = Field(None, ge=30, le=43200)
    hf_oauth_authorized_org: str | list[str] | None = None
    app_build_command: str | None = None
    duplicated_from: str | None = None

    @field_validator("app_file")
    @classmethod
    def _app_file_inside_repo(cls, value: str | None) -> str | None:
        return None if value is None else _safe_relative_path(value)

    @field_validator("startup_duration_timeout", mode="before")
    @classmethod
    def _valid_duration(cls, value: Any) -> Any:
        if value is not None:
            parse_duration(value)
            return str(value)
        return value

    @field_validator("custom_headers")
    @classmethod
    def _only_isolation_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, header_value in (value or {}).items():
            allowed = _ALLOWED_CUSTOM_HEADERS.get(name)
            if allowed is None:
                raise ValueError(
                    f"only {', '.join(sorted(_ALLOWED_CUSTOM_HEADERS))} are allowed, got {name!r}"
                )
            if header_value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(sorted(allowed))}")
        return value

    @field_validator("preload_from_hub")
    @classmethod
    def _valid_preload(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            PreloadEntry.parse(item)
        return value

    @property
    def preload_entries(self) -> list[PreloadEntry]:
        """The `preload_from_hub` items, parsed."""
        return [PreloadEntry.parse(item) for item in self.preload_from_hub or []]

    @property
    def startup_timeout_seconds(self) -> int | None:
        """The `startup_duration_timeout` in seconds, or None when it is not set."""
        return parse_duration(self.startup_duration_timeout) if self.startup_duration_timeout else None

    def card_data(self) -> dict[str, Any]:
        """The front matter as the Hub returns it in `cardData` (only keys that were set)."""
        return self.model_dump(exclude_none=True, by_alias=True)


def load_space_config(readme: str | None) -> SpaceConfig:
    """The configuration in README.md's front matter (an empty one without a README).

    Raises ConfigError with a message naming the key and line of the first problem."""
    if readme is None:
        return SpaceConfig()
    try:
        front = parse_front_matter(readme)
    except FrontMatterError as exc:
        raise ConfigError(str(exc)) from exc
    data = dict(front.data)
    for key in VERSION_KEYS:
        if key in data and data[key] is not None and key in front.raw_scalars:
            data[key] = front.raw_scalars[key]
    if isinstance(data.get("sdk"), str) and data["sdk"] not in SDKS:
        raise ConfigError(
            _at(front, "sdk", f"`sdk: {data['sdk']}` is not supported; use one of {', '.join(SDKS)}")
        )
    try:
        return SpaceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(front, exc)) from exc


def _at(front: FrontMatter, key: str, message: str) -> str:
    line = front.line_of(key)
    return f"README.md line {line}: {message}" if line else f"README.md: {message}"


def _describe_validation_error(front: FrontMatter, exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else ""
    value = front.data.get(key)
    reason = error["msg"].removeprefix("Value error, ")
    if error["type"] == "literal_error" and key in ("colorFrom", "colorTo"):
        reason = f"must be one of {', '.join(COLORS)}"
    return _at(front, key, f"`{key}` {reason} (got {value!r})")
