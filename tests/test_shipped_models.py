"""The trained models shipped in assets/models: they load, render varied images, carry a model card
whose training command resolves to exactly their architecture, and open in the app without any
computation (their PCA directions are cached for their own weights). Nothing here retrains them."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.directions import find_cached
from explorer.session import DirectionSettings
from gan.io.checkpoint import load_model
from gan.models.config import ModelConfig
from gan.seeds import z_from_seeds

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "assets" / "models"
SHIPPED = ["fashion-stylegan2", "fashion-pggan", "emoji-stylegan2"]


def test_every_promised_model_is_shipped_and_default_names_one():
    folders = sorted(p.name for p in MODELS.iterdir() if (p / "config.json").is_file())
    assert folders == sorted(SHIPPED)
    default = (MODELS / "DEFAULT").read_text().strip()
    assert default in SHIPPED


def test_all_models_together_stay_under_40_mb():
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total < 40 * 2 ** 20, f"assets/models holds {total / 2 ** 20:.1f} MB"


@pytest.mark.parametrize("name", SHIPPED)
def test_model_renders_varied_images_from_g_ema_only(name):
    folder = MODELS / name
    assert not list(folder.rglob("D.safetensors")), "ship the generator only"
    G, cfg = load_model(folder)
    assert cfg.img_resolution == 32
    with np.errstate(all="raise"):
        img = G(z_from_seeds(list(range(16)), G.z_dim), truncation_psi=1.0, noise_mode="const").numpy()
    assert np.isfinite(img).all()
    # Trained, not random: images use the range, and differ from one another (no collapse to one image).
    assert img.max() > 0.5 and img.min() < -0.5
    per_image = img.reshape(16, -1)
    distances = np.abs(per_image[:, None] - per_image[None]).mean(-1)[np.triu_indices(16, 1)]
    assert distances.min() > 0.02, "two seeds render (almost) the same image"


@pytest.mark.parametrize("name", SHIPPED)
def test_directions_are_cached_for_the_shipped_weights(name):
    folder = MODELS / name
    G, _ = load_model(folder)
    cached = find_cached(folder, G, DirectionSettings(), cache_dir=folder / "no-user-cache")
    assert cached is not None, f"run `python -m explorer directions --model {folder}` and commit directions/"
    assert cached.num_components >= 8


def test_pggan_ships_every_stage():
    stages = MODELS / "fashion-pggan" / "stages"
    resolutions = []
    for folder in sorted(stages.iterdir()):
        G, cfg = load_model(folder)
        resolutions.append(G.stage_resolutions[-1])
    assert resolutions == [4, 8, 16, 32]


@pytest.mark.parametrize("name", SHIPPED)
def test_model_card_command_resolves_to_the_shipped_architecture(name, tmp_path):
    """The card's command, run with --dry-run, must describe exactly the network that is shipped."""
    folder = MODELS / name
    card = (folder / "README.md").read_text()
    for picture in re.findall(r"!\[[^]]*\]\(([^)]+)\)", card):
        assert (folder / picture).is_file(), f"the card shows {picture}, which is missing"
    assert "| swd |" in card and "| msssim |" in card, "the card needs its metrics"
    commands = [line for line in card.splitlines() if line.startswith("python -m gan train ")]
    assert len(commands) == 1
    argv = shlex.split(commands[0])[3:]
    out = tmp_path / "run"
    argv[argv.index("--out") + 1] = str(out)
    proc = subprocess.run([sys.executable, "-m", "gan", *argv, "--dry-run"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    resolved = json.loads(proc.stdout)
    shipped = json.loads((folder / "config.json").read_text())
    # Fields added since the model was saved (e.g. c_dim) take their defaults on load: compare as loaded.
    assert resolved["model"] == ModelConfig.from_dict(shipped["model"]).to_dict()
    assert not out.exists(), "--dry-run writes nothing"
