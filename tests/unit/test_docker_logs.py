from spacehub.agent.drivers.docker import _split_timestamp


def test_docker_timestamps_become_milliseconds() -> None:
    assert _split_timestamp("2026-11-22T19:09:54.782123456Z Running on local URL\r") == (
        "2026-11-22T19:09:54.782Z",
        "Running on local URL",
    )
    assert _split_timestamp("2026-11-22T19:09:54Z x") == ("2026-11-22T19:09:54.000Z", "x")
    assert _split_timestamp("no timestamp") == ("", "no timestamp")
