from spacehub.stages import Stage
from spacehub.state.routes import SpaceRecord


def test_records_read_back_from_redis_hashes() -> None:
    record = SpaceRecord.from_hash(
        "alice-demo",
        {
            b"id": b"3",
            b"name": b"alice/demo",
            b"stage": b"RUNNING",
            b"private": b"1",
            b"sdk": b"streamlit",
            b"upstream": b"10.0.0.2:8501",
            b"build": b"7",
            b"host": b"h1",
            b"current_build": b"",
            b"live_build": b"7",
            b"live_host": b"h1",
        },
    )
    assert record is not None
    assert (record.id, record.stage, record.private, record.owner) == (3, Stage.RUNNING, True, "alice")
    assert record.current_build is None
    assert record.is_live(7, "h1") and not record.is_live(7, "h2") and not record.is_live(6, "h1")


def test_an_incomplete_hash_is_no_record() -> None:
    assert SpaceRecord.from_hash("x", {b"upstream": b"1.2.3.4:80"}) is None
