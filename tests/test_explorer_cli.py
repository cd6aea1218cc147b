"""python -m explorer directions|render|mix|stages|export, end to end on tiny real models."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--samples", "2000", "--components", "16"]


@pytest.fixture(scope="module")
def sg(tiny_stylegan2, tmp_path_factory):
    return str(shutil.copytree(tiny_stylegan2, tmp_path_factory.mktemp("cli") / "sg"))


@pytest.fixture(scope="module")
def pg(tiny_pggan, tmp_path_factory):
    return str(shutil.copytree(tiny_pggan, tmp_path_factory.mktemp("cli") / "pg"))


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "user-cache"))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_of_every_command_runs_as_a_module():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    top = subprocess.run([sys.executable, "-m", "explorer", "--help"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert top.returncode == 0
    for cmd in ("directions", "render", "mix", "stages", "export"):
        assert cmd in top.stdout
    from explorer.__main__ import build_parser
    for cmd in ("directions", "render", "mix", "stages", "export"):
        with pytest.raises(SystemExit) as e:
            build_parser().parse_args([cmd, "--help"])
        assert e.value.code == 0


def test_render_help_documents_the_inclusive_edit_range(capsys):
    from explorer.__main__ import build_parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "INCLUSIVE" in text and "end=6" in text


def test_directions_prints_a_variance_table_and_caches(sg, capsys):
    code, out, err = run(capsys, "directions", "--model", sg, *FAST, "--limit", "5")
    assert code == 0
    rows = [line.split() for line in out.splitlines()[2:]]
    assert len(rows) == 5 and [int(r[0]) for r in rows] == [0, 1, 2, 3, 4]
    ratios = [float(r[3]) for r in rows]
    assert ratios == sorted(ratios, reverse=True)
    assert "cached at" in err and list((Path(sg) / "directions").glob("directions-*.npz"))


def test_render_with_edits_mixing_and_a_session_that_reloads_identically(sg, tmp_path, capsys):
    out, session = tmp_path / "a.png", tmp_path / "s.json"
    code, _, err = run(capsys, "render", "--model", sg, "--seed", 3, "--trunc", 0.7, "--edit", "0:2@0-3",
                       "--edit", "1:-1", *FAST, "--mix-seed", 5, "--mix-preset", "coarse", "--size", 64,
                       "--save-session", session, "--out", out)
    assert code == 0, err
    assert Image.open(out).size == (64, 64)
    saved = json.loads(session.read_text())
    assert saved["edits"][0] == {"component": 0, "strength": 2.0, "start": 0, "end": 4}   # @0-3 inclusive
    assert saved["mix_layers"] == [0, 1, 2] and saved["truncation_psi"] == 0.7
    code, _, err = run(capsys, "render", "--session", session, "--size", 64, "--out", tmp_path / "b.png")
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(tmp_path / "b.png")))


def test_session_fields_can_be_overridden_by_flags(sg, tmp_path, capsys):
    session = tmp_path / "s.json"
    assert run(capsys, "render", "--model", sg, "--seed", 3, "--save-session", session, "--out", tmp_path / "a.png")[0] == 0
    assert run(capsys, "render", "--session", session, "--seed", 4, "--out", tmp_path / "b.png",
               "--save-session", tmp_path / "t.json")[0] == 0
    assert json.loads((tmp_path / "t.json").read_text())["seed"] == 4


def test_mix_writes_the_grid(sg, tmp_path, capsys):
    code, _, err = run(capsys, "mix", "--model", sg, "--rows", "1,2,3", "--cols", "4,5", "--layers", "0-3",
                       "--out", tmp_path / "g.png")
    assert code == 0, err
    assert Image.open(tmp_path / "g.png").size == (3 * 32, 4 * 32)


def test_stages_writes_a_labelled_strip(pg, tmp_path, capsys):
    code, _, err = run(capsys, "stages", "--model", pg, "--seed", 1, "--size", 64, "--out", tmp_path / "s.png")
    assert code == 0, err
    img = Image.open(tmp_path / "s.png")
    assert img.width >= 4 * 64 and img.height > 64


def test_stages_snapshots_without_a_stages_folder_is_one_line(sg, tmp_path, capsys):
    code, _, err = run(capsys, "stages", "--model", sg, "--seed", 1, "--snapshots", "--out", tmp_path / "s.png")
    assert code == 2 and err.startswith("error:") and "no stage snapshots" in err and err.count("\n") == 1


def test_export_gif_and_mp4(sg, tmp_path, capsys):
    code, _, err = run(capsys, "export", "--model", sg, "--seeds", "3,7,11", "--frames-per-seed", 4, "--loop",
                       "--fps", 12, "--size", 64, "--easing", "ease", "--edit", "0:1.5", *FAST,
                       "--out", tmp_path / "a.gif")
    assert code == 0, err
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 12 and gif.size == (64, 64) and gif.info.get("loop") == 0
    code, _, err = run(capsys, "export", "--model", sg, "--seeds", "3,7", "--frames-per-seed", 5, "--space", "w",
                       "--size", 64, "--out", tmp_path / "a.mp4")
    assert code == 0, err
    import imageio.v2 as iio
    assert len(iio.mimread(tmp_path / "a.mp4", format="FFMPEG")) == 6


@pytest.mark.parametrize("argv, message", [
    (["render", "--seed", 1, "--edit", "99:1", *FAST], "unknown component 99"),
    (["render", "--seed", 1, "--edit", "0:1@5-40"], "outside the model"),
    (["render", "--seed", 1, "--edit", "banana"], "bad edit"),
    (["render", "--seed", 1, "--mix-seed", 2], "--mix-layers"),
    (["render", "--seed", 1, "--mix-seed", 2, "--mix-layers", "0-99"], "outside"),
    (["render"], "no seed"),
    (["mix", "--rows", "1", "--cols", "2", "--layers", "6-8"], "outside"),
    (["export", "--seeds", "1,2", "--frames-per-seed", 5000], "frames per seed"),
    (["export", "--seeds", ",", "--frames-per-seed", 5], "no seeds"),
    (["export", "--seeds", "0-299", "--frames-per-seed", 10], "over the limit"),
    (["export", "--seeds", "1,2", "--fps", 0], "fps"),
])
def test_bad_input_is_one_line_and_exit_2(sg, tmp_path, capsys, monkeypatch, argv, message):
    from explorer import directions
    monkeypatch.setattr(directions, "compute_directions", lambda *a, **k: pytest.fail("heavy work began"))
    suffix = ".gif" if argv[0] == "export" else ".png"
    out = tmp_path / f"out{suffix}"
    try:
        code, _, err = run(capsys, *argv, "--model", sg, "--out", out)
    except SystemExit as e:                              # argparse-level errors
        code, err = e.code, capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists()


def test_missing_output_folder_and_pggan_mixing_are_one_line(sg, pg, tmp_path, capsys):
    code, _, err = run(capsys, "render", "--model", sg, "--seed", 1, "--out", tmp_path / "nope" / "a.png")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    code, _, err = run(capsys, "render", "--model", pg, "--seed", 1, "--mix-seed", 2, "--mix-layers", "0",
                       "--out", tmp_path / "a.png")
    assert code == 2 and "needs a StyleGAN2 model" in err and err.count("\n") == 1
    code, _, err = run(capsys, "mix", "--model", pg, "--rows", "1", "--cols", "2", "--out", tmp_path / "a.png")
    assert code == 2 and "needs a StyleGAN2 model" in err


def test_a_usage_error_from_a_subprocess_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "explorer", "render", "--seed", "x", "--out", str(tmp_path / "a.png")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.startswith("error:") and p.stderr.count("\n") == 1


def test_card_writes_readme_pictures_and_caches_directions(tiny_stylegan2, tmp_path, capsys):
    model = shutil.copytree(tiny_stylegan2, tmp_path / "m")
    from gan.__main__ import main as gan_main
    assert gan_main(["metrics", "--model", str(model), "--data", "digits", "--metrics", "swd,msssim", "--num", "32",
                     "--no-cache"]) == 0
    (tmp_path / "notes.md").write_text("- blurry: trained for zero kimg\n")
    code, _, err = run(capsys, "card", "--model", model, "--command", "python -m gan train --data digits",
                       "--hardware", "2 CPU cores", "--notes", tmp_path / "notes.md", "--seeds", "0-7")
    assert code == 0, err
    readme = (model / "README.md").read_text()
    for expected in ("python -m gan train --data digits", "2 CPU cores", "| swd |", "| msssim |",
                     "![samples](samples.png)", "![direction 0](direction-0.png)", "blurry: trained for zero kimg"):
        assert expected in readme
    # 8 seeds at 64 px in one row of 8; the strip has one row per strip seed and 7 strengths per row.
    assert Image.open(model / "samples.png").size == (8 * 66 + 2, 66 + 2)
    strip = Image.open(model / "direction-0.png")
    assert strip.width > 7 * 64 and strip.height > 4 * 64
    # The strip's middle column is the unedited render (tile 3 of row 0, at a 4 px pad).
    from explorer.engine import Engine
    eng = Engine(model, show_bars=False)
    base = np.asarray(eng.render(eng.default_state(seed=0, truncation_psi=0.7), size=64).convert("RGB"))
    x = 4 + 3 * (strip.width - 4) // 7
    assert np.array_equal(np.asarray(strip.convert("RGB"))[4:68, x:x + 64], base)
    assert list((model / "directions").glob("directions-*.npz")), "directions are cached next to the model"
    assert Image.open(model / "stages.png").width > 4 * 64


def test_card_with_a_missing_notes_file_is_one_line(sg, capsys, tmp_path):
    code, _, err = run(capsys, "card", "--model", sg, "--command", "x", "--hardware", "y",
                       "--notes", tmp_path / "nope.md")
    assert code == 2 and err.startswith("error: --notes") and len(err.strip().splitlines()) == 1
