"""Shared fixtures: tiny real models (random weights) written as real model folders."""
from __future__ import annotations

import os

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gan.allocator import keep_freed_memory

# As the programs do (app.py, the command lines, which some tests call in this process): from the start,
# so that every test runs under the same malloc settings
keep_freed_memory()

# Two cores are shared with chromium and subprocesses in the browser tests: keep torch modest.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

@pytest.fixture(scope="session", autouse=True)
def private_user_cache(tmp_path_factory):
    """No test reads or writes the real user cache (~/.cache/gan-latent-explorer): $GAN_CACHE_DIR points
    into the session's tmp folder unless a test sets its own (monkeypatch)."""
    os.environ["GAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("user-cache"))
    yield


class OpNames(TorchDispatchMode):
    """Records the name of every aten op that runs under it (`with OpNames() as ops: ...; ops.names`)."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.name())
        return func(*args, **(kwargs or {}))


TINY = dict(img_resolution=32, img_channels=3, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256,
            channel_max=32)


def tiny_config(arch: str = "stylegan2", **overrides):
    from gan.models.config import ModelConfig
    kw = dict(TINY, arch=arch)
    if arch == "pggan":
        kw["w_dim"] = kw["z_dim"]
    kw.update(overrides)
    return ModelConfig(**kw)


@pytest.fixture(scope="session")
def tiny_stylegan2(tmp_path_factory):
    """A 32x32 RGB StyleGAN2 model folder with random weights (G and D)."""
    from gan.commands import new_model
    return new_model(tmp_path_factory.mktemp("sg2") / "model", tiny_config("stylegan2"), seed=1)


@pytest.fixture(scope="session")
def tiny_pggan(tmp_path_factory):
    """A 32x32 RGB PGGAN model folder with random weights (G and D)."""
    from gan.commands import new_model
    return new_model(tmp_path_factory.mktemp("pg") / "model", tiny_config("pggan"), seed=1)


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium through Playwright, one for every browser test. Without it the tests fail with
    the command that installs it, rather than skip: a CI that lost its browser cannot pass silently."""
    from ui_helpers import CHROMIUM, launch_browser
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (or `sudo apt-get install -y chromium`)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()
