"""Training: run folders, exact resume, crash safety, PGGAN stages, datasets, torchrun.

Every run here is tiny (16x16, 32 channels, batch 8, a few dozen steps) and real: real files in
tmp_path, real snapshots, real subprocesses where a process must die or several must talk.
"""
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.__main__ import main as gan_main
from gan.io.checkpoint import load_model, load_network
from gan.data import load_dataset
from gan.training.config import TrainConfig
from gan.training.pggan import reals_at_stage, stage_at
from gan.training.state import InfiniteSampler, load_latest_snapshot, load_optimizer_state, optimizer_state, read_snapshot
from gan.training.stylegan2 import StyleGAN2Trainer
from gan.training import train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(resolution=16, channel_base=256, channel_max=32, z_dim=32, w_dim=32, mapping_layers=2, batch=8,
            tick_kimg=0.016, snap=1, grid_seeds="0-3", progress=False)
TINY_ARGS = ["--resolution", "16", "--channel-base", "256", "--channel-max", "32", "--z-dim", "32", "--batch", "8",
             "--tick-kimg", "0.016", "--snap", "1", "--grid-seeds", "0-3", "--no-progress"]
PGGAN = dict(phase_kimg=0.016, pggan_batch="4:8,8:8,16:8")  # 4x4, 8x8 fade/stable, 16x16 fade/stable by 0.064


def tiny(arch="stylegan2", **kw):
    extra = PGGAN if arch == "pggan" else dict(d_reg_interval=4, augment="ada", ada_kimg=0.2)
    return TrainConfig(**{**TINY, **extra, "arch": arch, **kw})


def make_images(folder: Path, n: int = 24, size: int = 20) -> list[Path]:
    """Coloured discs and squares on grey, a little like icons."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        img = np.full((size, size, 3), 128, np.uint8)
        cy, cx, r = rng.integers(6, size - 6, 2).tolist() + [int(rng.integers(3, 6))]
        yy, xx = np.mgrid[:size, :size]
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r if i % 2 else (abs(yy - cy) < r) & (abs(xx - cx) < r)
        img[mask] = rng.integers(0, 256, 3)
        paths.append(folder / f"img{i:03d}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "icons"
    make_images(folder)
    return folder


@pytest.fixture(scope="module")
def sg2_run(tmp_path_factory, image_folder):
    """An uninterrupted 8-step StyleGAN2 run (lazy R1 and path length at steps 0 and 4)."""
    out = tmp_path_factory.mktemp("sg2") / "run"
    train(tiny(data=str(image_folder), kimg=0.064, out=str(out)))
    return out


@pytest.fixture(scope="module")
def pggan_run(tmp_path_factory, image_folder):
    """An uninterrupted PGGAN run through 4x4, 8x8 and 16x16 (10 steps)."""
    out = tmp_path_factory.mktemp("pg") / "run"
    train(tiny("pggan", data=str(image_folder), kimg=0.08, out=str(out)))
    return out


def snapshot_tensors(run: Path) -> dict:
    path, tensors, state, _ = load_latest_snapshot(run)
    assert path is not None
    return tensors


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:5]}"


def log_records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def run_gan(*args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "gan", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


# ---- the run folder ------------------------------------------------------------------------------

def test_a_run_writes_config_log_grids_snapshots_and_a_final_model(sg2_run):
    config = json.loads((sg2_run / "config.json").read_text())
    assert config["kind"] == "gan-training-run" and config["train"]["z_dim"] == 32
    ticks = [r for r in log_records(sg2_run) if r["event"] == "tick"]
    assert [t["kimg"] for t in ticks] == [0.016, 0.032, 0.048, 0.064]
    for key in ("loss_G", "loss_D", "img_per_s", "seconds", "mem_cpu_mb", "augment_p", "pl_mean"):
        assert all(np.isfinite(t[key]) for t in ticks), key
    grids = sorted(p.name for p in (sg2_run / "samples").glob("fakes-*.png"))
    assert len(grids) == 5 and grids[0] == "fakes-000000.000.png"  # the start, then one per tick
    assert Image.open(sg2_run / "samples" / grids[-1]).size == (2 * 17 + 1, 2 * 17 + 1)
    assert len(list((sg2_run / "snapshots").glob("snapshot-*.safetensors"))) == 2  # --keep-snapshots 2
    G, cfg = load_model(sg2_run / "final")
    assert cfg.img_resolution == 16 and load_network(sg2_run / "final", "D") is not None
    final = json.loads((sg2_run / "final" / "config.json").read_text())
    assert final["training"]["kimg"] == 0.064 and final["dataset"]["num_images"] == 24


def test_the_reals_grid_spreads_over_the_whole_dataset(sg2_run, image_folder):
    """4 grid seeds over 24 images: tiles are images 0, 6, 12 and 18, not the first four."""
    ds = load_dataset(str(image_folder), 16)
    grid = np.asarray(Image.open(sg2_run / "samples" / "reals.png").convert("RGB"))
    tiles = [grid[1 + r * 17:17 + r * 17, 1 + c * 17:17 + c * 17].transpose(2, 0, 1) for r in (0, 1) for c in (0, 1)]
    for tile, index in zip(tiles, [0, 6, 12, 18]):
        assert np.abs(tile.astype(int) - ds[index].numpy().astype(int)).max() <= 1, index


def test_the_final_model_renders_with_gan_generate(sg2_run, tmp_path):
    assert gan_main(["generate", "--model", str(sg2_run / "final"), "--seeds", "0-3", "--out", str(tmp_path)]) == 0
    img = np.asarray(Image.open(tmp_path / "seed0000.png"))
    assert img.shape == (16, 16, 3) and img.std() > 0


def test_the_final_model_holds_g_ema_not_the_raw_generator(sg2_run):
    tensors = snapshot_tensors(sg2_run)
    G, _ = load_model(sg2_run / "final")
    for name, value in G.state_dict().items():
        assert torch.equal(value, tensors[f"G_ema.{name}"]), name
    assert any(not torch.equal(tensors[f"G.{k}"], tensors[f"G_ema.{k}"]) for k in G.state_dict())


def test_snapshots_are_safetensors_with_a_json_pointer(sg2_run):
    pointer = json.loads((sg2_run / "snapshots" / "latest.json").read_text())
    path = sg2_run / "snapshots" / pointer["file"]
    assert pointer["cur_nimg"] == 64 and path.suffix == ".safetensors"
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    tensors, state = read_snapshot(path)
    assert {"opt_G.0.exp_avg", "opt_D.0.exp_avg_sq", "rng.0.torch", "rng.0.numpy", "rng.0.python",
            "sampler.perm", "sampler.generator", "extra.pl_mean"} <= tensors.keys()
    assert state["cur_nimg"] == 64 and state["step"] == 8 and state["augment"]["mode"] == "ada"


# ---- exact resume --------------------------------------------------------------------------------

def test_a_resumed_stylegan2_run_equals_an_uninterrupted_one(sg2_run, image_folder, tmp_path):
    out = tmp_path / "run"
    train(tiny(data=str(image_folder), kimg=0.024, out=str(out)))  # 3 steps
    train(tiny(data=str(image_folder), kimg=0.064, out=str(out)))  # same --out: resumes, regularises at step 4
    assert any(r["event"] == "resume" for r in log_records(out))
    assert_same_state(snapshot_tensors(out), snapshot_tensors(sg2_run))


def test_a_resumed_pggan_run_equals_an_uninterrupted_one(pggan_run, image_folder, tmp_path):
    out = tmp_path / "run"
    train(tiny("pggan", data=str(image_folder), kimg=0.024, out=str(out)))  # stops half-way through the 8x8 fade-in
    assert load_latest_snapshot(out)[2]["cur_nimg"] == 24
    train(tiny("pggan", data=str(image_folder), kimg=0.08, out=str(out)))
    assert_same_state(snapshot_tensors(out), snapshot_tensors(pggan_run))


def test_resume_from_a_snapshot_file_into_a_new_folder_continues_exactly(sg2_run, tmp_path):
    earlier = sg2_run / "snapshots" / "snapshot-000000000048.safetensors"
    assert gan_main(["train", "--resume", str(earlier), "--out", str(tmp_path / "branch"), "--no-progress"]) == 0
    assert_same_state(snapshot_tensors(tmp_path / "branch"), snapshot_tensors(sg2_run))
    assert (tmp_path / "branch" / "final" / "G.safetensors").is_file()


def test_a_resumed_run_keeps_its_resolved_auto_options_when_kimg_grows(image_folder, tmp_path):
    out = tmp_path / "run"
    train(tiny("pggan", data=str(image_folder), kimg=0.04, phase_kimg=0, out=str(out)))  # auto: 0.04 / 5 phases
    train(tiny("pggan", data=str(image_folder), kimg=0.056, phase_kimg=0, out=str(out)))
    assert json.loads((out / "config.json").read_text())["train"]["phase_kimg"] == pytest.approx(0.008)


def test_resuming_with_a_different_model_is_refused_before_anything_is_overwritten(sg2_run, capsys):
    before = {p: p.stat().st_mtime_ns for p in sg2_run.rglob("*")}
    assert gan_main(["train", "--out", str(sg2_run), "--resolution", "32"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot resume") and "resolution" in err and "\n" not in err.strip()
    assert gan_main(["train", "--out", str(sg2_run), "--arch", "pggan"]) == 2
    assert {p: p.stat().st_mtime_ns for p in sg2_run.rglob("*")} == before


def test_sampler_and_optimizer_state_round_trip():
    a = InfiniteSampler(10, seed=3)
    a.take(7)
    b = InfiniteSampler(10, seed=99)
    b.load_state(*a.state())
    assert torch.equal(a.take(25), b.take(25))  # across two reshuffles

    p = torch.nn.Parameter(torch.randn(4))
    opt = torch.optim.Adam([p], betas=(0.0, 0.99))
    p.grad = torch.ones(4)
    opt.step()
    tensors, meta = optimizer_state(opt, "opt")
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = torch.optim.Adam([q], betas=(0.0, 0.99))
    load_optimizer_state(opt2, tensors, json.loads(json.dumps(meta)), "opt")
    for o, prm in ((opt, p), (opt2, q)):
        prm.grad = torch.full([4], 0.5)
        o.step()
    assert torch.equal(p, q)


# ---- crash safety --------------------------------------------------------------------------------

# Runs `python -m gan ARGS` in a process that SIGKILLs itself right after the data of its second snapshot
# is written and before that file is renamed into place: the fault is injected from outside the code
# under test, at the one moment a crash-safe writer must survive.
KILLED_MID_SNAPSHOT = """
import os, signal, sys
import gan.training.state as state
real_save_file, written = state.save_file, []
def save_then_die(tensors, path, metadata=None):
    real_save_file(tensors, path, metadata=metadata)
    written.append(path)
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
state.save_file = save_then_die
from gan.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_while_writing_a_snapshot_keeps_the_previous_one_and_resume_matches(sg2_run, image_folder, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", image_folder, "--kimg", "0.064", "--d-reg-interval", "4", "--augment", "ada",
            "--ada-kimg", "0.2", *TINY_ARGS, "--out", out]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_SNAPSHOT, *map(str, args)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert list((out / "snapshots").glob(".snapshot-*.tmp"))  # the interrupted write, complete but not renamed
    path, _, state, _ = load_latest_snapshot(out)
    assert path.name == "snapshot-000000000016.safetensors" and state["cur_nimg"] == 16

    done = run_gan(*args, env={"OMP_NUM_THREADS": str(torch.get_num_threads())})
    assert done.returncode == 0, done.stderr
    assert not list((out / "snapshots").glob(".snapshot-*.tmp"))
    assert_same_state(snapshot_tensors(out), snapshot_tensors(sg2_run))


def test_a_failed_snapshot_write_leaves_the_previous_one_and_resume_matches(sg2_run, image_folder, tmp_path,
                                                                          monkeypatch):
    import gan.training.state as state
    real_save_file, calls = state.save_file, []

    def disk_full_on_the_second_write(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            real_save_file(tensors, path, metadata=metadata)
            raise OSError(28, "No space left on device")
        real_save_file(tensors, path, metadata=metadata)

    monkeypatch.setattr(state, "save_file", disk_full_on_the_second_write)
    cfg = tiny(data=str(image_folder), kimg=0.064, out=str(tmp_path / "run"))
    with pytest.raises(OSError, match="No space left"):
        train(cfg)
    monkeypatch.undo()
    folder = tmp_path / "run" / "snapshots"
    assert not list(folder.glob(".snapshot-*.tmp"))  # the writer removed its temporary file
    assert load_latest_snapshot(tmp_path / "run")[0].name == "snapshot-000000000016.safetensors"
    train(cfg)
    assert_same_state(snapshot_tensors(tmp_path / "run"), snapshot_tensors(sg2_run))


def test_a_resumed_run_logs_each_tick_once_and_in_order(image_folder, tmp_path, monkeypatch):
    """Interrupted after logging a tick it had not snapshotted yet: the resumed run logs that tick again,
    so the crashed session's line must go."""
    cfg = tiny(data=str(image_folder), kimg=0.064, snap=2, out=str(tmp_path / "run"))  # snapshots at 0.032, 0.064
    real_step = StyleGAN2Trainer.step

    def interrupted_at_step_7(self, real, step_idx):
        if step_idx == 7:  # ticks 0.016, 0.032 (snapshot) and 0.048 are logged by now
            raise KeyboardInterrupt
        return real_step(self, real, step_idx)

    monkeypatch.setattr(StyleGAN2Trainer, "step", interrupted_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert [r["kimg"] for r in log_records(tmp_path / "run") if r["event"] == "tick"] == [0.016, 0.032, 0.048]
    monkeypatch.undo()
    train(cfg)
    records = log_records(tmp_path / "run")
    ticks = [r for r in records if r["event"] == "tick"]
    assert [t["kimg"] for t in ticks] == [0.016, 0.032, 0.048, 0.064]
    assert [t["tick"] for t in ticks] == [1, 2, 3, 4] and [t["step"] for t in ticks] == [2, 4, 6, 8]
    assert [r["event"] for r in records].count("resume") == 1
    assert [r["kimg"] for r in records] == sorted(r["kimg"] for r in records)  # the whole log runs forward


def test_a_broken_latest_snapshot_falls_back_to_the_previous_one(sg2_run, tmp_path):
    import shutil
    run = tmp_path / "copy"
    shutil.copytree(sg2_run, run)
    newest = run / "snapshots" / json.loads((run / "snapshots" / "latest.json").read_text())["file"]
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, e.g. by a full disk
    path, _, state, notes = load_latest_snapshot(run)
    assert path.name == "snapshot-000000000048.safetensors" and notes


# ---- PGGAN ---------------------------------------------------------------------------------------

def test_pggan_schedule_fades_in_each_resolution_then_stabilises():
    res = [4, 8, 16]
    assert stage_at(0, 1.0, res) == stage_at(999, 1.0, res)
    s = stage_at(1500, 1.0, res)
    assert (s.resolution, s.fading, s.alpha) == (8, True, 0.5)
    assert (stage_at(2500, 1.0, res).resolution, stage_at(2500, 1.0, res).alpha) == (8, 1.0)
    assert stage_at(10_000, 1.0, res).resolution == 16 and not stage_at(10_000, 1.0, res).fading


def test_pggan_reals_are_downsampled_and_faded_like_the_generator():
    real = torch.rand(2, 3, 16, 16)
    stable = reals_at_stage(real, stage_at(2500, 1.0, [4, 8, 16]))
    assert stable.shape == (2, 3, 8, 8) and torch.allclose(stable, torch.nn.functional.avg_pool2d(real, 2))
    start = reals_at_stage(real, stage_at(1000, 1.0, [4, 8, 16]))  # alpha 0: the blocky 4x4 image
    assert torch.allclose(start[:, :, ::2, ::2], start[:, :, 1::2, 1::2])


def test_pggan_trains_through_every_stage_and_keeps_a_model_of_each(pggan_run):
    stages = [r["stage"] for r in log_records(pggan_run) if r["event"] == "stage"]
    assert stages[0] == "4x4 stable" and stages[-1] == "16x16 stable" and len(stages) == 5
    for res in (4, 8, 16):
        G, cfg = load_model(pggan_run / "stages" / f"{res:03d}x{res:03d}")
        assert (G.depth, G.alpha, cfg.img_resolution) == ([4, 8, 16].index(res), 1.0, 16)
        img = G(torch.randn(2, G.z_dim))
        assert img.shape == (2, 3, res, res) and torch.isfinite(img).all()
    G, _ = load_model(pggan_run / "final")
    assert G.img_resolution == 16 and G.depth == 2


# ---- datasets ------------------------------------------------------------------------------------

def test_corrupt_images_are_skipped_and_reported_in_the_run_log(tmp_path):
    make_images(tmp_path / "data", n=8)
    (tmp_path / "data" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    train(tiny(data=str(tmp_path / "data"), kimg=0.008, out=str(tmp_path / "run")))
    dataset = next(r for r in log_records(tmp_path / "run") if r["event"] == "dataset")
    assert dataset["num_images"] == 8 and dataset["skipped"] == 1
    assert dataset["skipped_files"][0]["path"].endswith("broken.png")


def test_a_zip_of_images_trains(tmp_path):
    paths = make_images(tmp_path / "imgs", n=8)
    with zipfile.ZipFile(tmp_path / "icons.zip", "w") as zf:
        for p in paths:
            zf.write(p, f"icons/{p.name}")
    final = train(tiny(data=str(tmp_path / "icons.zip"), kimg=0.016, out=str(tmp_path / "run")))
    G, cfg = load_model(final)
    assert cfg.img_channels == 3 and G(torch.randn(1, G.z_dim)).shape == (1, 3, 16, 16)


# ---- torchrun --------------------------------------------------------------------------------------

def test_torchrun_with_two_processes_keeps_their_weights_identical(image_folder, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    out = tmp_path / "run"
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "gan", "train",
                           "--data", str(image_folder), "--kimg", "0.032", "--d-reg-interval", "2", *TINY_ARGS,
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = log_records(out)
    assert next(r for r in records if r["event"] == "start")["world_size"] == 2
    sums = next(r for r in records if r["event"] == "checksums")
    assert len(sums["ranks"]) == 2 and sums["identical"]
    ticks = [r for r in records if r["event"] == "tick"]
    assert ticks[-1]["step"] == 4 and "r1_penalty" in ticks[-1]  # 32 images in global batches of 8
    load_model(out / "final")
