"""The strict YAML config loader: unknown keys, wrong types, overrides, nested sections."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pytest

from core.config import apply_overrides, from_dict, load_config, parse_override, to_dict
from core.errors import ConfigError
from pipeline.config import RunConfig


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    steps: int = 3
    name: str = "a"
    size: tuple[int, int] = (384, 128)
    tags: list[str] = field(default_factory=list)
    path: Optional[str] = None


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file():
    cfg = load_config(Outer)
    assert cfg == Outer()


def test_file_values_and_int_to_float(tmp_path):
    cfg = load_config(Outer, write(tmp_path, "inner:\n  rate: 1\n  size: [256, 128]\nflag: true\n"))
    assert cfg.inner.rate == 1.0
    assert isinstance(cfg.inner.rate, float)
    assert cfg.inner.size == (256, 128)
    assert cfg.flag is True
    assert cfg.inner.steps == 3  # untouched default


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "inner:\n  rte: 1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(Outer, path)
    msg = str(exc.value)
    assert "inner.rte" in msg
    assert str(path) in msg
    assert "rate" in msg


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'trackr'"):
        load_config(Outer, write(tmp_path, "trackr: {}\n"))


@pytest.mark.parametrize("text,key", [
    ("inner:\n  steps: 2.5\n", "inner.steps"),
    ("inner:\n  steps: '3'\n", "inner.steps"),
    ("flag: 1\n", "flag"),
    ("inner:\n  rate: fast\n", "inner.rate"),
    ("inner:\n  size: [1, 2, 3]\n", "inner.size"),
    ("inner: 5\n", "inner"),
])
def test_wrong_types_are_errors(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(Outer, write(tmp_path, text))


def test_overrides_parse_yaml_values():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=hello") == (["a"], "hello")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("novalue")


def test_overrides_apply_on_top_of_file(tmp_path):
    path = write(tmp_path, "inner:\n  rate: 0.1\n  steps: 9\n")
    cfg = load_config(Outer, path, ["inner.rate=0.7", "inner.path=/x", "flag=true"])
    assert cfg.inner.rate == 0.7
    assert cfg.inner.steps == 9
    assert cfg.inner.path == "/x"
    assert cfg.flag


def test_override_unknown_key_is_named():
    with pytest.raises(ConfigError, match="inner.nonexistent"):
        load_config(Outer, None, ["inner.nonexistent=1"])


def test_apply_overrides_does_not_mutate_input():
    data = {"a": {"b": 1}}
    out = apply_overrides(data, ["a.b=2"])
    assert data == {"a": {"b": 1}}
    assert out == {"a": {"b": 2}}


def test_configs_are_frozen():
    cfg = from_dict(Outer, {})
    with pytest.raises(Exception):
        cfg.flag = True


def test_missing_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, write(tmp_path, "a: [1,\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Outer, write(tmp_path, "- 1\n- 2\n"))


def test_to_dict_round_trip():
    cfg = load_config(Outer, None, ["inner.tags=[x, y]"])
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_run_config_tracker_override():
    cfg = load_config(RunConfig, None, ["tracker.track_buffer=60"])
    assert cfg.tracker.track_buffer == 60
    with pytest.raises(ConfigError, match="tracker.nonexistent"):
        load_config(RunConfig, None, ["tracker.nonexistent=1"])
