import pytest

from spacehub.spec.config import ConfigError, load_space_config, parse_duration

README = """---
title: My demo
emoji: 🚀
colorFrom: indigo
colorTo: pink
sdk: gradio
sdk_version: 5.0
python_version: 3.10
app_file: src/app.py
pinned: false
tags: [a, b]
---

# My demo
"""


def test_reads_the_keys_of_the_front_matter() -> None:
    config = load_space_config(README)
    assert config.title == "My demo"
    assert config.sdk == "gradio"
    assert config.app_file == "src/app.py"
    assert config.tags == ["a", "b"]
    assert config.card_data()["colorFrom"] == "indigo"


def test_versions_keep_their_text_instead_of_becoming_floats() -> None:
    config = load_space_config(README)
    assert config.python_version == "3.10"
    assert config.sdk_version == "5.0"


def test_no_readme_or_no_front_matter_is_an_empty_config() -> None:
    assert load_space_config(None).sdk is None
    assert load_space_config("# Just a title\n").card_data() == {}


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError) as error:
        load_space_config("---\ntitle: ok\nsdk: [gradio\n---\n")
    assert error.value.message.startswith("README.md line 3: invalid YAML in the front matter")


def test_unknown_sdk_names_the_key_and_line() -> None:
    with pytest.raises(ConfigError) as error:
        load_space_config("---\ntitle: x\nsdk: flask\n---\n")
    assert error.value.message.startswith("README.md line 3:")
    assert "flask" in error.value.message and "gradio" in error.value.message


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("app_port: abc", "app_port"),
        ("app_port: 70000", "app_port"),
        ("colorFrom: mauve", "colorFrom"),
        ("pinned: sometimes", "pinned"),
        ("tags: 3", "tags"),
        ("startup_duration_timeout: soon", "startup_duration_timeout"),
        ("app_file: ../../etc/passwd", "app_file"),
        ("python_version: two", "python_version"),
    ],
)
def test_bad_types_name_the_key_and_line(line: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_space_config(f"---\nsdk: docker\n{line}\n---\n")
    assert error.value.message.startswith("README.md line 3:")
    assert f"`{key}`" in error.value.message


def test_front_matter_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_space_config("---\n- a\n- b\n---\n")


def test_custom_headers_allow_only_isolation_headers() -> None:
    ok = load_space_config("---\ncustom_headers:\n  cross-origin-opener-policy: same-origin\n---\n")
    assert ok.custom_headers == {"cross-origin-opener-policy": "same-origin"}
    with pytest.raises(ConfigError, match="custom_headers"):
        load_space_config("---\ncustom_headers:\n  x-frame-options: deny\n---\n")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("1h", 3600), ("90", 90), ("1.5h", 5400), ("2d", 172800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_unknown_keys_are_kept_for_card_data() -> None:
    config = load_space_config("---\nsdk: static\nfavourite_colour: teal\n---\n")
    assert config.card_data()["favourite_colour"] == "teal"
