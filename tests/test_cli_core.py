"""`python -m gan new|info|generate` as a user runs them: real processes, real files."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def gan(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "gan", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"gan {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def test_info_reports_official_config_f_and_pggan_parameter_counts(tmp_path):
    gan("new", "--arch", "stylegan2", "--resolution", 1024, "--channel-base", 32768, "--channel-max", 512,
        "--mapping-layers", 8, "--out", tmp_path / "f")
    info = json.loads(gan("info", "--model", tmp_path / "f").stdout)
    assert info["params"]["G"] == pytest.approx(30.37e6, rel=0.005)
    assert info["params"]["mapping"] == pytest.approx(2.10e6, rel=0.005)
    assert info["params"]["D"] == pytest.approx(29.01e6, rel=0.005)
    assert (info["arch"], info["img_resolution"], info["img_channels"], info["z_dim"], info["w_dim"],
            info["num_ws"]) == ("stylegan2", 1024, 3, 512, 512, 18)
    assert info["stage_resolutions"] == [4, 8, 16, 32, 64, 128, 256, 512, 1024]

    gan("new", "--arch", "pggan", "--resolution", 1024, "--out", tmp_path / "p")
    (tmp_path / "p" / "D.safetensors").unlink()  # D is then built from the config for the count
    info = json.loads(gan("info", "--model", tmp_path / "p").stdout)
    assert info["params"]["G"] == pytest.approx(23.1e6, rel=0.01)
    assert info["params"]["D"] > 20e6 and info["has_D_weights"] is False
    assert info["num_ws"] == 1 and info["params"]["mapping"] == 0


def test_generate_writes_a_png_per_seed_and_a_grid(tiny_stylegan2, tmp_path):
    gan("generate", "--model", tiny_stylegan2, "--seeds", "0-2,42", "--trunc", 0.7, "--out", tmp_path / "imgs")
    names = sorted(p.name for p in (tmp_path / "imgs").iterdir())
    assert names == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0042.png"]
    a = np.asarray(Image.open(tmp_path / "imgs" / "seed0000.png"))
    b = np.asarray(Image.open(tmp_path / "imgs" / "seed0001.png"))
    assert a.shape == (32, 32, 3) and not np.array_equal(a, b)

    gan("generate", "--model", tiny_stylegan2, "--seeds", "0-5", "--trunc", 0.7, "--grid", "--out", tmp_path / "grid.png")
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (3 * 33 + 1, 2 * 33 + 1)  # 3x2 tiles with 1 px borders
    # the grid's first tile is the same image as seed 0 rendered alone
    assert np.array_equal(np.asarray(grid)[1:33, 1:33], a)


def test_generate_is_deterministic_across_runs_for_pggan(tiny_pggan, tmp_path):
    for out in ["a", "b"]:
        gan("generate", "--model", tiny_pggan, "--seeds", "7", "--out", tmp_path / out)
    assert (tmp_path / "a" / "seed0007.png").read_bytes() == (tmp_path / "b" / "seed0007.png").read_bytes()


@pytest.mark.parametrize("args, expect", [
    (["info", "--model", "/nonexistent/model"], "no such model folder"),
    (["generate", "--model", "{sg2}", "--seeds", "9-3", "--out", "{tmp}/x"], "bad seed range"),
    (["generate", "--model", "{sg2}", "--seeds", "1", "--grid", "--out", "{tmp}/no/dir/g.png"], "does not exist"),
    (["new", "--resolution", "48", "--out", "{tmp}/r48"], "resolution 48"),
])
def test_user_errors_exit_nonzero_with_one_line(args, expect, tiny_stylegan2, tmp_path):
    args = [a.format(sg2=tiny_stylegan2, tmp=tmp_path) for a in args]
    proc = gan(*args, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], proc.stderr


def test_every_command_has_help():
    from gan.__main__ import build_parser
    commands = build_parser()._subparsers._group_actions[0].choices  # what `python -m gan` offers
    assert set(commands) == {"new", "info", "generate", "pack", "train", "metrics", "import"}
    for cmd in commands:
        out = gan(cmd, "--help").stdout
        assert out.startswith(f"usage: python -m gan {cmd}") and "--" in out


LIGHT_PARSE = """
import sys
from gan.__main__ import build_parser as gan_parser
from explorer.__main__ import build_parser as explorer_parser
gan_parser().parse_args(["generate", "--model", "m", "--seeds", "0-3", "--trunc", "0.7", "--out", "o"])
explorer_parser().parse_args(["render", "--model", "m", "--seed", "1", "--edit", "0:2@0-3", "--out", "o.png"])
train = gan_parser().parse_args(["train", "--data", "emoji", "--out", "o", "--kimg", "1", "--augment", "ada"])
metrics = gan_parser().parse_args(["metrics", "--model", "m", "--data", "emoji"])
print("torch after parsing every command:", "torch" in sys.modules)
print("train:", train.func.__name__, train.data, train.kimg, train.augment, "metrics:", metrics.func.__name__,
      metrics.num, metrics.metrics)
import gan.training, gan.metrics
print("torch after importing the packages:", "torch" in sys.modules)
from gan.training import TrainConfig, train
from gan.metrics import METRICS, compute_metrics, inception_score
print("exports:", TrainConfig.__name__, train.__module__, list(METRICS)[:2], compute_metrics.__module__,
      inception_score.__module__, "torch" in sys.modules)
"""


def test_commands_parse_without_torch_and_packages_import_it_on_first_use():
    # Parsing (what --help and usage errors need) of every command, train and metrics included, imports no
    # torch (2-3 s on two cores); gan.training and gan.metrics import their modules when a name is used.
    proc = subprocess.run([sys.executable, "-c", LIGHT_PARSE], capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.splitlines() == [
        "torch after parsing every command: False",
        "train: train_command emoji 1.0 ada metrics: metrics_command 2000 swd,msssim",
        "torch after importing the packages: False",
        "exports: TrainConfig gan.training.loop ['swd', 'msssim'] gan.metrics.evaluate gan.metrics.inception_score True",
    ], proc.stderr
    for command in ("train", "metrics"):
        assert gan(command, "--help").stdout.startswith(f"usage: python -m gan {command}")
    usage = gan("generate", "--seeds", "1", check=False)   # a usage error, from the light path
    assert usage.returncode == 2 and "--model" in usage.stderr and "--out" in usage.stderr
    bad = gan("train", "--data", "emoji", "--augment", "sometimes", check=False)
    assert bad.returncode == 2 and "invalid choice: 'sometimes'" in bad.stderr


def test_pack_keeps_the_generator_and_every_stage_and_renders_the_same(tiny_pggan, tmp_path):
    # A finished PGGAN run as the trainer leaves it: final/ (G + D) and stages/RRRxRRR (G + D).
    import shutil
    from gan.io.checkpoint import load_model, save_model
    from gan.models.networks import build_discriminator
    run = tmp_path / "run"
    shutil.copytree(tiny_pggan, run / "final")
    G, cfg = load_model(tiny_pggan)
    for depth, res in enumerate(cfg.resolutions):
        G.set_stage(depth, 1.0)
        save_model(run / "stages" / f"{res:03d}x{res:03d}", G, cfg, D=build_discriminator(cfg))
    gan("pack", "--run", run, "--out", tmp_path / "packed")
    packed = tmp_path / "packed"
    assert sorted(p.name for p in packed.iterdir()) == ["G.safetensors", "config.json", "stages"]
    assert sorted(p.name for p in (packed / "stages").iterdir()) == ["004x004", "008x008", "016x016", "032x032"]
    assert not list(packed.rglob("D.safetensors"))
    gan("generate", "--model", run / "final", "--seeds", "0-3", "--grid", "--out", tmp_path / "a.png")
    gan("generate", "--model", packed, "--seeds", "0-3", "--grid", "--out", tmp_path / "b.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))
    # A second pack onto it is refused, and an unfinished run is refused before anything is written.
    assert "already holds a model" in gan("pack", "--run", run, "--out", packed, check=False).stderr
    (tmp_path / "unfinished" / "snapshots").mkdir(parents=True)
    proc = gan("pack", "--run", tmp_path / "unfinished", "--out", tmp_path / "p2", check=False)
    assert proc.returncode == 2 and "has not finished" in proc.stderr and not (tmp_path / "p2").exists()
