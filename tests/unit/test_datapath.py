"""What HAProxy serves itself, and how its counts are read."""

from __future__ import annotations

import dataclasses

from spacehub.proxy.datapath import Visits, fast_path_upstream, parse_table
from spacehub.stages import Stage, Tier
from spacehub.state.routes import SpaceRecord

RUNNING = SpaceRecord.from_hash(
    "owner-app",
    {
        b"id": b"7",
        b"name": b"owner/app",
        b"stage": b"RUNNING",
        b"sdk": b"gradio",
        b"upstream": b"10.0.0.2:7860",
    },
)


def test_a_running_public_app_is_served_by_haproxy() -> None:
    assert RUNNING is not None and RUNNING.stage == Stage.RUNNING
    assert fast_path_upstream(RUNNING) == "10.0.0.2:7860"


def test_everything_else_goes_to_the_activator() -> None:
    assert RUNNING is not None
    for changed in (
        {"private": True},
        {"tier": Tier.FROZEN},
        {"tier": Tier.SLEEPING},
        {"upstream": ""},
        {"static_sha": "abc"},
        {"headers": {"X-Frame-Options": "DENY"}},
    ):
        assert fast_path_upstream(dataclasses.replace(RUNNING, **changed)) is None, changed


def test_the_stick_table_is_read_by_key() -> None:
    text = (
        "# table: visits, type: string, size:1048576, used:2\n"
        "0x55d1: key=a-b.localhost use=0 exp=3599000 shard=0 conn_cur=0 http_req_cnt=12\n"
        "0x55d2: key=c-d.localhost use=1 exp=3599999 shard=0 conn_cur=1 http_req_cnt=3\n"
    )
    assert parse_table(text) == {"a-b.localhost": Visits(12, 0), "c-d.localhost": Visits(3, 1)}
