"""gan.io.json_dataclass and gan.io.cache: the one strict JSON reader, the one user cache folder."""
from dataclasses import dataclass, field

import pytest

from gan.io.cache import user_cache_dir
from gan.io.json_dataclass import from_json_dict


class Bad(ValueError):
    pass


@dataclass(frozen=True)
class Example:
    name: str = "a"
    count: int = 1
    scale: float = 1.0
    flag: bool = False
    limit: int | None = None
    items: tuple[int, ...] = ()
    extra: dict = field(default_factory=dict)


def test_missing_keys_take_defaults_and_ints_become_floats_for_float_fields():
    e = from_json_dict(Example, {"count": 3, "scale": 2}, "example", Bad)
    assert e == Example(count=3, scale=2.0) and isinstance(e.scale, float)


def test_unknown_keys_are_refused_in_the_callers_words():
    with pytest.raises(Bad, match=r"^unknown example key\(s\) bogus, other: written by a newer"):
        from_json_dict(Example, {"bogus": 1, "other": 2}, "example", Bad)
    with pytest.raises(Bad, match=r"^unknown training option\(s\) bogus"):
        from_json_dict(Example, {"bogus": 1}, "example", Bad, keys="training option(s)")


@pytest.mark.parametrize("key, value, want", [
    ("count", "3", "an integer"), ("count", 2.5, "an integer"), ("count", True, "an integer"),
    ("scale", "x", "a number"), ("scale", None, "a number"), ("flag", 1, "true or false"),
    ("name", 5, "a string"), ("limit", "7", "an integer or null"), ("items", 3, "a list"),
    ("extra", [], "an object"),
])
def test_values_of_the_wrong_type_are_named(key, value, want):
    with pytest.raises(Bad) as err:
        from_json_dict(Example, {key: value}, "example", Bad)
    assert str(err.value) == f"bad example: {key!r} must be {want}, got {value!r}"


def test_optional_fields_take_null_and_converters_run_before_the_check():
    e = from_json_dict(Example, {"limit": None, "items": [1, 2]}, "example", Bad, convert={"items": tuple})
    assert e.limit is None and e.items == (1, 2)


def test_a_non_object_is_refused():
    with pytest.raises(Bad, match="example must be a JSON object, got list"):
        from_json_dict(Example, [1], "example", Bad)


def test_cache_folder_comes_from_gan_cache_dir_then_the_old_name_then_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("GAN_CACHE_DIR", raising=False)
    monkeypatch.delenv("GAN_EXPLORER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir("metrics") == tmp_path / "xdg" / "gan-latent-explorer" / "metrics"
    monkeypatch.setenv("GAN_EXPLORER_CACHE", str(tmp_path / "old"))
    with pytest.warns(FutureWarning, match="GAN_EXPLORER_CACHE is deprecated"):
        assert user_cache_dir("directions") == tmp_path / "old" / "directions"
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "new"))
    assert user_cache_dir() == tmp_path / "new"
