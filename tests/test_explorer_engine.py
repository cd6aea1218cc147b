"""The explorer engine: rendering and its cache, stage previews and snapshots, sessions, export."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.engine import Engine, load_session, open_engine
from explorer.images import labelled_strip
from explorer.session import (DirectionSettings, Edit, ExplorerError, ExplorerState, format_edit, parse_edit)
from gan.io.checkpoint import load_model, save_model

DIRS = DirectionSettings(samples=2000, components=16)


def private_engine(model, tmp_path_factory) -> Engine:
    """An engine on a private copy of a shared model folder (directions get cached inside it)."""
    folder = shutil.copytree(model, tmp_path_factory.mktemp("model") / "m")
    return Engine(folder, cache_dir=tmp_path_factory.mktemp("cache"), show_bars=False)


@pytest.fixture(scope="module")
def engine(tiny_stylegan2, tmp_path_factory):
    return private_engine(tiny_stylegan2, tmp_path_factory)


@pytest.fixture(scope="module")
def pg_engine(tiny_pggan, tmp_path_factory):
    return private_engine(tiny_pggan, tmp_path_factory)


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(np.int16)


# ---- rendering -------------------------------------------------------------------------------

def test_render_is_the_seed_image_of_the_official_rule(engine):
    """A state renders what G(z_from_seeds([seed]), psi) gives."""
    from gan.commands import generate_images
    from gan.io.images import to_uint8
    want = to_uint8(generate_images(engine.G, [7], truncation_psi=0.5))[0]
    got = np.asarray(engine.render(engine.default_state(seed=7, truncation_psi=0.5)))
    assert got.shape == (32, 32, 3) and np.array_equal(got, want)


def test_render_scales_to_a_display_size(engine):
    img = engine.render(engine.default_state(seed=1), size=96)
    assert img.size == (96, 96)
    small = np.asarray(engine.render(engine.default_state(seed=1)))
    assert np.array_equal(np.asarray(img)[::3, ::3], small)   # integer upscale: nearest, pixels kept


def test_renders_are_cached_by_the_full_state_and_bounded(tiny_stylegan2, tmp_path, monkeypatch):
    eng = Engine(tiny_stylegan2, cache_size=2, cache_dir=tmp_path, show_bars=False)
    calls = []
    real = eng.render_tensor
    monkeypatch.setattr(eng, "render_tensor", lambda s: calls.append(s) or real(s))
    a = eng.default_state(seed=1)
    eng.render(a)
    eng.render(a)
    assert len(calls) == 1
    eng.render(a.replace(truncation_psi=0.7))               # any field is part of the key
    eng.render(a.replace(seed=2))
    assert len(calls) == 3 and len(eng._renders) == 2
    eng.render(a)                                           # evicted (least recently used)
    assert len(calls) == 4


def test_edited_render_with_strength_zero_is_the_plain_render(engine):
    plain = engine.render(engine.default_state(seed=3))
    zero = engine.render(engine.default_state(seed=3, edits=[Edit(0, 0.0)], directions=DIRS))
    edited = engine.render(engine.default_state(seed=3, edits=[Edit(0, 3.0)], directions=DIRS))
    assert np.array_equal(np.asarray(plain), np.asarray(zero))
    assert not np.array_equal(np.asarray(plain), np.asarray(edited))


def test_pggan_edits_act_in_z(pg_engine):
    state = pg_engine.default_state(seed=3, directions=DIRS)
    edited = state.with_edit(0, 3.0)
    assert not torch.equal(pg_engine.ws(edited), pg_engine.ws(state))
    assert np.array_equal(np.asarray(pg_engine.render(state.with_edit(0, 0.0))), np.asarray(pg_engine.render(state)))


def test_random_noise_is_reproducible_per_state(tiny_stylegan2, tmp_path):
    eng = Engine(tiny_stylegan2, cache_dir=tmp_path, show_bars=False)
    with torch.no_grad():                                 # a fresh model's noise strengths are 0
        for name, p in eng.G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    state = eng.default_state(seed=4, noise_mode="random")
    first = np.asarray(eng.render(state))
    eng.clear_cache()
    torch.randn(10)                                       # global RNG state does not matter
    assert np.array_equal(first, np.asarray(eng.render(state)))
    assert not np.array_equal(first, np.asarray(eng.render(state.replace(noise_mode="const"))))


def test_state_is_checked_against_the_model_before_work(engine):
    k = engine.num_components(DIRS)
    with pytest.raises(ExplorerError, match="unknown component"):
        engine.check_state(engine.default_state(directions=DIRS).replace(edits=[Edit(k, 1.0)]))
    with pytest.raises(ExplorerError, match="outside"):
        engine.check_state(engine.default_state().replace(edits=[Edit(0, 1.0, 0, engine.num_ws + 1)]))
    with pytest.raises(ExplorerError, match="mixing layer"):
        engine.check_state(engine.default_state().replace(mix_seed=1, mix_layers=[engine.num_ws]))


def test_info_describes_the_model_for_a_ui(engine):
    info = engine.info()
    json.dumps(info)
    assert info["num_ws"] == engine.num_ws and info["stage_resolutions"] == [4, 8, 16, 32]
    assert info["mixing_presets"]["coarse"] == [0, 1, 2] and info["supports_style_mixing"] is True


def test_open_engine_loads_a_model_once(engine):
    assert open_engine(engine.model_path) is open_engine(str(engine.model_path))


# ---- resolution stages -----------------------------------------------------------------------

@pytest.mark.parametrize("which", ["engine", "pg_engine"])
def test_stage_previews_number_the_models_stages(which, request):
    eng = request.getfixturevalue(which)
    previews = eng.stage_previews(eng.default_state(seed=1), size=64, resample="bilinear")
    assert [p.resolution for p in previews] == eng.stage_resolutions == [4, 8, 16, 32]
    assert [p.label for p in previews] == ["4x4", "8x8", "16x16", "32x32"]
    assert all(p.image.size == (64, 64) for p in previews)


def test_last_stage_preview_is_the_image(engine):
    state = engine.default_state(seed=2)
    assert np.array_equal(np.asarray(engine.stage_previews(state)[-1].image), np.asarray(engine.render(state)))


def test_stage_strip_is_one_labelled_image(engine):
    strip = engine.stage_strip(engine.default_state(seed=1), size=64)
    assert strip.height > 64 and strip.width >= 4 * 64
    label_band = np.asarray(strip.convert("L"))[64 + 8:, :]
    assert (label_band < 128).any()                       # text was drawn under the tiles


def make_run_with_stages(root, tiny_pggan):
    """A PGGAN run as the trainer leaves it: <run>/final and <run>/stages/RRRxRRR per stage."""
    G, cfg = load_model(tiny_pggan)
    save_model(root / "final", G, cfg)
    for depth, res in enumerate(cfg.resolutions):
        G.set_stage(depth, 1.0)
        save_model(root / "stages" / f"{res:03d}x{res:03d}", G, cfg)
    return root / "final"


def test_stage_snapshots_render_the_seed_through_each_snapshot(tiny_pggan, tmp_path):
    final = make_run_with_stages(tmp_path / "run", tiny_pggan)
    eng = Engine(final, cache_dir=tmp_path / "cache", show_bars=False)
    shots = eng.stage_snapshots(eng.default_state(seed=5), size=64)
    assert [s.resolution for s in shots] == [4, 8, 16, 32]
    assert all(s.image.size == (64, 64) for s in shots)
    # The last snapshot is the full model: the same image as the final render.
    assert np.array_equal(np.asarray(shots[-1].image), np.asarray(eng.render(eng.default_state(seed=5), size=64)))
    assert eng.info()["stage_snapshots"] == ["004x004", "008x008", "016x016", "032x032"]


def test_stage_snapshots_inside_the_model_folder_are_found(tiny_pggan, tmp_path):
    G, cfg = load_model(tiny_pggan)
    save_model(tmp_path / "m", G, cfg)
    G.set_stage(1, 1.0)
    save_model(tmp_path / "m" / "stages" / "008x008", G, cfg)
    eng = Engine(tmp_path / "m", cache_dir=tmp_path / "cache", show_bars=False)
    assert [s.resolution for s in eng.stage_snapshots(eng.default_state())] == [8]


def test_stage_snapshots_sort_by_resolution_not_by_name(tiny_pggan, tmp_path):
    # Names sort "1024x1024" before "128x128" as text; the stages panel must still go 4 -> 1024.
    G, cfg = load_model(tiny_pggan)
    save_model(tmp_path / "m", G, cfg)
    names = ["512x512", "1024x1024", "128x128", "064x064"]
    for name in names:
        save_model(tmp_path / "m" / "stages" / name, G, cfg)
    eng = Engine(tmp_path / "m", cache_dir=tmp_path / "cache", show_bars=False)
    assert [p.name for p in eng.stage_snapshot_folders()] == ["064x064", "128x128", "512x512", "1024x1024"]


def test_no_stage_snapshots_is_an_empty_list(engine):
    assert engine.stage_snapshots(engine.default_state()) == []


def test_labelled_strip_needs_images():
    with pytest.raises(ExplorerError):
        labelled_strip([])


# ---- sessions --------------------------------------------------------------------------------

def full_state(engine) -> ExplorerState:
    return engine.default_state(seed=11, truncation_psi=0.6, noise_mode="random", directions=DIRS,
                                edits=[Edit(0, 1.5, 0, 3), Edit(2, -0.75)], mix_seed=3, mix_layers=[5, 6, 7])


def test_a_saved_session_reloads_to_the_identical_image(engine, tmp_path):
    state = full_state(engine)
    before = np.asarray(engine.render(state))
    state.save(tmp_path / "s.json")
    engine.clear_cache()
    eng2, loaded = load_session(tmp_path / "s.json")
    assert loaded == state
    fresh = Engine(loaded.model, cache_dir=engine.cache_dir, show_bars=False)   # a new process, in effect
    assert np.array_equal(np.asarray(fresh.render(loaded)), before)


def test_session_json_round_trip_and_format_version(engine):
    state = full_state(engine)
    d = json.loads(state.to_json())
    assert d["format_version"] == 1 and d["edits"][0] == {"component": 0, "strength": 1.5, "start": 0, "end": 3}
    assert ExplorerState.from_dict(d) == state
    assert ExplorerState.from_dict({"model": "x"}) == ExplorerState(model="x")     # missing keys: defaults


@pytest.mark.parametrize("patch, message", [
    ({"format_version": 99}, "newer"),
    ({"colour": 1}, "unknown session key"),
    ({"seed": -1}, "seed"),
    ({"truncation_psi": "high"}, "truncation"),
    ({"noise_mode": "loud"}, "noise mode"),
    ({"edits": [{"component": 0}]}, "strength"),
    ({"mix_layers": [0, 1]}, "mix seed"),
])
def test_bad_sessions_are_refused_with_one_line(patch, message):
    with pytest.raises(ExplorerError, match=message) as e:
        ExplorerState.from_dict({**ExplorerState(model="m").to_dict(), **patch})
    assert "\n" not in str(e.value)


def test_with_edit_sets_one_slider_per_component():
    s = ExplorerState().with_edit(0, 1.0).with_edit(1, 2.0).with_edit(0, -1.0, 0, 4)
    assert s.edits == (Edit(1, 2.0), Edit(0, -1.0, 0, 4))
    assert s.with_edit(1, 0).edits == (Edit(0, -1.0, 0, 4),)


def test_cli_edit_syntax_is_inclusive_and_round_trips():
    assert parse_edit("3:-1.5@0-5") == Edit(3, -1.5, 0, 6)
    assert parse_edit("2:1@4") == Edit(2, 1.0, 4, 5)
    assert parse_edit("0:2.5") == Edit(0, 2.5)
    assert parse_edit(format_edit(Edit(3, -1.5, 0, 6))) == Edit(3, -1.5, 0, 6)
    for bad in ("x:1", "1", "1:2@5-3", "1:nan"):
        with pytest.raises(ExplorerError):
            parse_edit(bad)


# ---- interpolation export --------------------------------------------------------------------

def test_gif_has_the_frames_loops_and_starts_at_the_first_seed(engine, tmp_path):
    state = engine.default_state(truncation_psi=0.8)
    out = engine.export(state, [3, 7, 11], tmp_path / "a.gif", frames_per_segment=4, loop=True, fps=10)
    with Image.open(out) as gif:
        assert gif.n_frames == 12 and gif.info.get("loop") == 0
        gif.seek(0)
        first = pixels(gif.convert("RGB"))
    want, other = pixels(engine.render(state.replace(seed=3))), pixels(engine.render(state.replace(seed=7)))
    # GIF frames are quantised to 256 colours (fast octree): close to seed 3, far from seed 7.
    assert first.shape == want.shape and np.abs(first - want).mean() < 10
    assert np.abs(first - want).mean() < np.abs(first - other).mean() / 3


def test_first_frame_is_the_render_of_the_first_seed(engine):
    state = engine.default_state(truncation_psi=0.8)
    frames = list(engine.frames(state, [3, 7], frames_per_segment=3))
    assert len(frames) == 4
    # Batched and single renders may differ in the last float bit: at most 1 level.
    assert np.abs(frames[0].astype(int) - pixels(engine.render(state.replace(seed=3)))).max() <= 1
    assert np.abs(frames[-1].astype(int) - pixels(engine.render(state.replace(seed=7)))).max() <= 1


def test_edits_and_truncation_apply_to_every_frame(engine, tmp_path):
    state = engine.default_state(truncation_psi=0.5, directions=DIRS).with_edit(1, 3.0, 0, 4)
    ws = engine.path_ws(state, [3, 7], frames_per_segment=5, space="w")
    assert ws.shape == (6, engine.num_ws, engine.w_dim)
    torch.testing.assert_close(ws[0], engine.ws(state.replace(seed=3))[0])
    torch.testing.assert_close(ws[-1], engine.ws(state.replace(seed=7))[0])
    z_path = engine.path_ws(state, [3, 7], frames_per_segment=5, space="z")
    torch.testing.assert_close(z_path[0], engine.ws(state.replace(seed=3))[0])


def test_mp4_is_readable_with_the_right_frame_count(pg_engine, tmp_path):
    import imageio.v2 as iio
    progress = []
    out = pg_engine.export(pg_engine.default_state(), [1, 2], tmp_path / "a.mp4", frames_per_segment=6, space="w",
                           easing="ease", fps=12, size=64, progress=lambda f, t: progress.append(f))
    frames = iio.mimread(out, format="FFMPEG")
    assert len(frames) == 7 and frames[0].shape == (64, 64, 3)
    assert progress[-1] == 1.0 and len(progress) == 7


@pytest.mark.parametrize("kwargs, message", [
    (dict(seeds=[]), "no keyframes"),
    (dict(frames_per_segment=0), "frames per seed"),
    (dict(seeds=list(range(300)), frames_per_segment=10), "over the limit"),
    (dict(out="missing/a.gif"), "does not exist"),
    (dict(out="a.avi"), "must end in"),
    (dict(fps=100), "at most"),
    (dict(space="q"), "latent space"),
    (dict(easing="bounce"), "easing"),
])
def test_bad_export_requests_are_refused_before_any_work(engine, tmp_path, monkeypatch, kwargs, message):
    monkeypatch.setattr(engine, "render_ws", lambda *a, **k: pytest.fail("rendered"))
    args = dict(seeds=[1, 2], frames_per_segment=4, out="a.gif")
    args.update(kwargs)
    args["out"] = tmp_path / args["out"]
    with pytest.raises(ExplorerError, match=message):
        engine.export(engine.default_state(), **args)


def test_one_synthesis_per_state_and_the_stages_pass_gives_the_image(tiny_stylegan2, monkeypatch):
    """A state shown at two sizes, or with its stages, runs the generator once; the images are those of
    a fresh engine's plain render (bitwise)."""
    from explorer.engine import Engine
    engine, fresh = Engine(tiny_stylegan2, show_bars=False), Engine(tiny_stylegan2, show_bars=False)
    calls = []   # synthesis passes: full (forward) or block by block (the incremental render)
    forward, blockwise = engine.G.synthesis.forward, engine._blocks.render
    monkeypatch.setattr(engine.G.synthesis, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    monkeypatch.setattr(engine._blocks, "render", lambda *a, **k: calls.append(1) or blockwise(*a, **k))
    state = engine.default_state(seed=11, truncation_psi=0.7)
    big, small = engine.render(state, size=128), engine.render(state, size=48)
    assert len(calls) == 1
    assert np.array_equal(np.asarray(big), np.asarray(fresh.render(state, size=128)))
    assert np.array_equal(np.asarray(small), np.asarray(fresh.render(state, size=48)))
    other = state.replace(seed=12)
    engine.stage_previews(other, size=64)
    image = engine.render(other)
    assert len(calls) == 2
    assert np.array_equal(np.asarray(image), np.asarray(fresh.render(other)))
