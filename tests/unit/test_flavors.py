import pytest

from spacehub.queue.flavors import load_flavors, parse_size


@pytest.mark.parametrize(
    ("text", "size"), [("16Gi", 16 * 1024**3), ("512Mi", 512 * 1024**2), ("2G", 2 * 10**9), (1024, 1024)]
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


def test_the_builtin_table_matches_hugging_face() -> None:
    flavors = load_flavors()
    basic = flavors["cpu-basic"]
    assert (basic.cpu, basic.memory, basic.is_gpu) == (2, "16Gi", False)
    assert basic.default_sleep_seconds == 48 * 3600
    assert flavors["cpu-upgrade"].default_sleep_seconds is None
    t4 = flavors["t4-small"]
    assert t4.gpus == 1 and t4.accelerator_env == "t4-small"
    public = t4.public()
    assert public["name"] == "t4-small" and public["accelerator"]["model"] == "T4"
    assert flavors["cpu-basic"].public()["accelerator"] is None


def test_an_operator_file_replaces_the_table(tmp_path) -> None:
    path = tmp_path / "flavors.yaml"
    path.write_text("flavors:\n  tiny: {pretty_name: Tiny, cpu: 0.5, memory: 256Mi}\n")
    flavors = load_flavors(path)
    assert list(flavors) == ["tiny"] and flavors["tiny"].memory_bytes == 256 * 1024**2
