"""Incremental synthesis: after any sequence of edits the image is bitwise the full render of the same
ws (the generator called directly), while an edit of late layers runs only the late blocks."""
from __future__ import annotations

import random

import pytest
import torch

from conftest import tiny_config
from explorer.engine import Engine
from explorer.session import DirectionSettings

FAST = DirectionSettings(samples=2000, components=8)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from gan.commands import new_model
    cfg = tiny_config("stylegan2", img_resolution=64, conv_clamp=256)
    folder = new_model(tmp_path_factory.mktemp("inc") / "m", cfg, seed=3)
    return folder


def full_render(engine, state) -> torch.Tensor:
    """The generator itself on the state's ws, seeded as the engine seeds 'random' noise."""
    ws = engine.ws(state)
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(state.seed)
        return engine.G.synthesis(ws, noise_mode=state.noise_mode)


@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
def test_random_edit_sequences_render_bitwise_as_full_renders(model, noise_mode):
    engine = Engine(model, show_bars=False, block_cache_bytes=8 << 20)
    rng = random.Random(noise_mode)
    state = engine.default_state(seed=1, truncation_psi=0.7, noise_mode=noise_mode, directions=FAST)
    n = engine.num_ws
    for step in range(14):
        kind = rng.choice(["edit", "edit", "edit", "seed", "mix", "psi"])
        if kind == "edit":
            start = rng.randrange(n)
            state = state.with_edit(rng.randrange(8), round(rng.uniform(-3, 3), 2), start, rng.randrange(start + 1, n + 1))
        elif kind == "seed":
            state = state.replace(seed=rng.randrange(50))
        elif kind == "mix":
            state = state.replace(mix_seed=rng.randrange(50), mix_layers=sorted(rng.sample(range(n), 3)))
        else:
            state = state.replace(truncation_psi=round(rng.uniform(0.3, 1.0), 2))
        got = engine.render_tensor(state)
        assert torch.equal(got, full_render(engine, state)), (step, kind)
        with torch.inference_mode():
            ref = engine.G.synthesis(engine.ws(state), noise_mode="const", reference=True) \
                if noise_mode == "const" else None
        if ref is not None:
            assert (got - ref).abs().max().item() < 1e-4
    assert engine._blocks.bytes <= 8 << 20
    assert 0 < engine._blocks.features_run < 14 * len(engine.G.synthesis.block_resolutions)   # it did reuse blocks


def test_a_fine_edit_runs_only_the_blocks_after_its_first_layer(model):
    engine = Engine(model, show_bars=False)
    synthesis = engine.G.synthesis
    blocks = [getattr(synthesis, f"b{r}") for r in synthesis.block_resolutions]
    state = engine.default_state(seed=4, directions=FAST)
    engine.render_tensor(state)
    # The last block reads ws[k:] from k = its conv0's index; the block before reads that index in
    # its toRGB (it shares the w of the next conv0, as in the official network), so from there on
    # that toRGB runs again, but not that block's convs.
    first_of_last = sum(b.num_conv for b in blocks[:-1])
    for start, convs_rerun, torgbs_rerun in ((first_of_last + 1, 1, 1), (first_of_last, 1, 2),
                                              (first_of_last - 1, 2, 2)):
        before = engine._blocks.features_run, engine._blocks.skips_run
        edited = state.with_edit(2, 1.5 + start, start, None)
        got = engine.render_tensor(edited)
        after = engine._blocks.features_run, engine._blocks.skips_run
        assert (after[0] - before[0], after[1] - before[1]) == (convs_rerun, torgbs_rerun), start
        assert torch.equal(got, full_render(engine, edited)), start
    before = engine._blocks.features_run, engine._blocks.skips_run
    engine.render_tensor(state.with_edit(2, 1.5, 0, 2))       # a coarse edit: everything again
    after = engine._blocks.features_run, engine._blocks.skips_run
    assert (after[0] - before[0], after[1] - before[1]) == (len(blocks), len(blocks))


def test_a_zero_byte_cache_still_renders_every_image(model):
    engine = Engine(model, show_bars=False, block_cache_bytes=0)
    state = engine.default_state(seed=9)
    assert torch.equal(engine.render_tensor(state), full_render(engine, state)) and engine._blocks.bytes == 0


# ---- the early preview: a lower stage of the same forward pass, which the render then continues ----

def block_flops(engine) -> list[float]:
    """FLOPs of each block of one image through the reference path, as torch's FlopCounterMode counts
    them per module: independent of the MAC estimate preview_block makes from the weight shapes."""
    from torch.utils.flop_counter import FlopCounterMode
    synthesis = engine.G.synthesis
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        synthesis(engine.ws(engine.default_state(seed=0)), noise_mode="const", reference=True)
    per_module = counter.get_flop_counts()
    names = {name.rsplit(".", 1)[-1]: flops for name, flops in per_module.items()}
    return [sum(names[f"b{r}"].values()) for r in synthesis.block_resolutions]


@pytest.mark.parametrize("res", [64, 256])
def test_the_preview_block_is_the_last_within_a_third_of_the_flops(tmp_path, res):
    from gan.commands import new_model
    from explorer.incremental import PREVIEW_SHARE, BlockCache
    cfg = tiny_config("stylegan2", img_resolution=res, channel_base=16 * res, channel_max=64)
    engine = Engine(new_model(tmp_path / "m", cfg, seed=0), show_bars=False)
    flops = block_flops(engine)
    cumulative = [sum(flops[:i + 1]) / sum(flops) for i in range(len(flops))]
    block = BlockCache.preview_block(engine.G.synthesis)
    assert block is not None and block < len(flops) - 1
    assert cumulative[block] <= PREVIEW_SHARE < cumulative[block + 1], cumulative


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_an_early_preview_is_a_stage_of_the_image_and_the_render_continues_from_it(model, noise_mode):
    from explorer.incremental import BlockCache
    engine = Engine(model, show_bars=False)
    synthesis = engine.G.synthesis
    block = BlockCache.preview_block(synthesis)
    res = synthesis.block_resolutions[block]
    state = engine.default_state(seed=5, truncation_psi=0.7, noise_mode=noise_mode, directions=FAST)
    # The stage strip's image of that stage (a separate full forward pass), at the same size:
    for resample in ("nearest", "bilinear"):
        engine._blocks.clear()
        preview = engine.early_preview(state, size=200, resample=resample)
        stage = next(s for s in engine.stage_previews(state, size=200, resample=resample) if s.resolution == res)
        assert preview.resolution == res and preview.image.size == (200, 200)
        assert list(preview.image.getdata()) == list(stage.image.getdata())
        engine.clear_cache()
    engine._blocks.clear()
    engine.early_preview(state)
    convs_before = engine._blocks.features_run
    image = engine.render_tensor(state)    # resumes after the preview's block, bitwise a full render
    assert engine._blocks.features_run - convs_before == len(synthesis.block_resolutions) - block - 1
    assert torch.equal(image, full_render(engine, state))


def test_no_early_preview_where_it_would_not_help(model, tiny_pggan):
    from explorer.incremental import BlockCache
    engine = Engine(model, show_bars=False)
    state = engine.default_state(seed=6, directions=FAST)
    engine.render(state)
    assert engine.early_preview(state) is None                 # the image is rendered already
    synthesis = engine.G.synthesis
    # The preview block's toRGB reads w index `torgb` (the next block's conv0 reads it too).
    torgb = sum(getattr(synthesis, f"b{r}").num_conv
                for r in synthesis.block_resolutions[:BlockCache.preview_block(synthesis) + 1])
    assert engine.early_preview(state.with_edit(1, 2.0, torgb + 1, None)) is None   # leaves that stage as it is
    assert engine.early_preview(state.with_edit(1, 2.0, torgb, None)) is not None   # its toRGB changes it
    assert engine.early_preview(state.with_edit(1, 2.5, 0, None)) is not None
    pg = Engine(tiny_pggan, show_bars=False)
    assert pg.early_preview(pg.default_state(seed=1)) is None  # one latent for every layer: no block cache
