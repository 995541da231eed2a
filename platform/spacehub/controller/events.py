"""The controller's loop that applies agents' reports (state/events.py) to the database."""

from __future__ import annotations

import logging
import socket
import threading

import redis

from spacehub.controller.context import ControllerContext
from spacehub.controller.spaces import apply_event
from spacehub.state.events import Event

log = logging.getLogger(__name__)


def apply_with_retries(
    ctx: ControllerContext, event: Event, stop: threading.Event, attempts: int = 5
) -> None:
    """Apply one report; transient failures (a locked database) are retried, a report that keeps
    failing is logged and dropped rather than blocking every report behind it."""
    for attempt in range(1, attempts + 1):
        try:
            with ctx.session() as session:
                apply_event(ctx, session, event)
            return
        except Exception:
            if attempt == attempts:
                log.exception("dropping %s after %d failed attempts", event, attempts)
                return
            log.warning("applying %s failed (attempt %d); retrying", event, attempt, exc_info=True)
            stop.wait(attempt)


def consume_events(ctx: ControllerContext, stop: threading.Event) -> None:
    """Apply reports until `stop` is set; first the ones a previous run read but never applied."""
    consumer = f"controller-{socket.gethostname()}"
    pending = True
    while not stop.is_set():
        try:
            ctx.events.ensure_group()
            entries = list(ctx.events.read(consumer, pending=pending, block_ms=1000))
            if pending and not entries:
                pending = False
            for entry_id, event in entries:
                apply_with_retries(ctx, event, stop)
                ctx.events.ack(entry_id)
        except redis.ConnectionError as exc:
            log.warning("event stream unavailable (%s); retrying", exc)
            stop.wait(2)
