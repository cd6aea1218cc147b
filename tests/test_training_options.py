"""Training options: resolving auto values, one-line errors for bad ones, --dry-run."""
import json

import pytest

from gan.__main__ import main as gan_main
from gan.training.config import TrainConfig, TrainConfigError
from test_training import TINY_ARGS, make_images  # the tiny run options and helpers of the main file


def test_config_round_trips_and_resolves_auto_values():
    cfg = TrainConfig(arch="pggan", data="digits", resolution=16, kimg=2, out="x")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    r = cfg.resolve()
    assert (r.channels, r.channel_max, r.z_dim, r.w_dim, r.lr) == (1, 32, 64, 64, 0.001)
    assert r.phase_kimg == pytest.approx(0.4)  # 2 kimg over 5 phases: 4x4, 8x8 fade/stable, 16x16 fade/stable
    assert r.pggan_batch == "4:64,8:32,16:32"
    assert r.resolve() == r  # resolving twice changes nothing
    assert TrainConfig(data="emoji", resolution=64, out="x").resolve().augment == "ada"  # StyleGAN2: official ADA
    assert r.augment == "none" and r.augment_p == 0.0 and r.batch == 32


@pytest.mark.parametrize("kw, fragment", [
    (dict(resolution=48), "power of two"),
    (dict(batch=-1), "--batch"),
    (dict(data=""), "--data"),
    (dict(augment="sometimes"), "--augment"),
    (dict(pggan_batch="4-64"), "--pggan-batch"),
    (dict(precision="fp8"), "--precision"),
    (dict(grid_seeds="a-b"), "--grid-seeds"),
])
def test_bad_options_raise_one_line_errors(kw, fragment):
    with pytest.raises(TrainConfigError) as e:
        TrainConfig(**{"data": "digits", "resolution": 16, "out": "x", **kw}).validate()
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_unknown_keys_in_a_stored_config_are_refused():
    with pytest.raises(TrainConfigError, match="unknown training option"):
        TrainConfig.from_dict({"data": "digits", "learning_rate": 1})


def test_cli_prints_a_bad_option_as_one_error_line_and_exits_2(tmp_path, capsys):
    assert gan_main(["train", "--data", "digits", "--resolution", "48", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --resolution 48") and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_dry_run_prints_the_resolved_config_and_writes_nothing(tmp_path, capsys):
    image_folder = tmp_path / "icons"
    make_images(image_folder)
    out = tmp_path / "run"
    assert gan_main(["train", "--data", str(image_folder), "--kimg", "1", "--out", str(out), *TINY_ARGS,
                     "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["train"]["resolution"] == 16 and printed["train"]["augment"] == "ada"
    assert printed["model"]["channel_max"] == 32 and printed["dataset"]["num_images"] == 24
    assert not out.exists()


def test_an_empty_folder_is_refused_before_training_starts(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert gan_main(["train", "--data", str(tmp_path / "empty"), "--resolution", "16", "--out",
                     str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no training images") and "empty" in err
    assert not (tmp_path / "run").exists()
