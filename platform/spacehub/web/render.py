"""Server-side rendering: the Jinja environment and the helpers templates use."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from spacehub.controller.accounts import RESERVED_NAMES
from spacehub.stages import ERROR_STAGES, IN_PROGRESS_STAGES, Stage

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")

# Raw HTML in READMEs is shown as text, and markdown-it refuses javascript: links: no script runs
# on the hub's origin from a repository's content.
_MARKDOWN = (
    MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
)

GRADIENTS = {
    "red": "#ef4444", "yellow": "#eab308", "green": "#22c55e", "blue": "#3b82f6", "indigo": "#6366f1",
    "purple": "#a855f7", "pink": "#ec4899", "gray": "#6b7280",
}  # fmt: skip


def render_markdown(text: str) -> Markup:
    """Markdown as HTML; raw HTML in it shows as text, since READMEs are untrusted."""
    return Markup(_MARKDOWN.render(text))


def stage_kind(stage: str | Stage | None) -> str:
    """A badge style for a stage: ok, busy, error or idle."""
    if stage is None:
        return "idle"
    value = Stage(stage)
    if value == Stage.RUNNING:
        return "ok"
    if value in IN_PROGRESS_STAGES:
        return "busy"
    if value in ERROR_STAGES:
        return "error"
    return "idle"


def stage_label(stage: str | Stage | None) -> str:
    """A stage as people read it (`RUNTIME_ERROR` -> `Runtime Error`)."""
    return Stage(stage).value.replace("_", " ").title() if stage else "Unknown"


def time_ago(value: datetime | float | None) -> str:
    """How long ago `value` (a datetime or a Unix time) was, in the largest whole unit."""
    if value is None:
        return "never"
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    seconds = max(0, int((datetime.now(UTC) - moment).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def duration(seconds: float | None) -> str:
    """A number of seconds in the largest whole unit that fits: "48 hours", "15 minutes"."""
    value = int(seconds or 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if value >= size and value % size == 0 and not (unit == "day" and value < 7 * 86400):
            count = value // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{value} second{'s' if value != 1 else ''}"


def file_size(value: float | None) -> str:
    """A byte count in B, KB, MB, GB or TB (powers of 1024)."""
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def gradient(card: dict[str, Any]) -> str:
    """The CSS gradient of a card, from its front matter's colorFrom and colorTo."""
    start = GRADIENTS.get(str(card.get("colorFrom")), GRADIENTS["indigo"])
    end = GRADIENTS.get(str(card.get("colorTo")), GRADIENTS["purple"])
    return f"linear-gradient(135deg, {start}, {end})"


def profile_url(name: str) -> str:
    """Profiles live at /{name}, as on the Hub; an account named like a page of the hub (the
    operator's `admin`) has its profile at /users/{name}."""
    return f"/users/{name}" if name.lower() in RESERVED_NAMES else f"/{name}"


def percent(used: float, total: float) -> int:
    """`used` as a whole percentage of `total`, within 0 to 100."""
    return 0 if total <= 0 else max(0, min(100, round(100 * used / total)))


def build_templates() -> Jinja2Templates:
    """The Jinja templates, with the filters and globals the pages use."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.filters.update(markdown=render_markdown, time_ago=time_ago, file_size=file_size, duration=duration)
    env.globals.update(
        stage_kind=stage_kind,
        stage_label=stage_label,
        gradient=gradient,
        percent=percent,
        profile_url=profile_url,
    )
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates
