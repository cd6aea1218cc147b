"""The training loop shared by StyleGAN2 and PGGAN (its command line is gan/training/cli.py).

    from gan.training import TrainConfig, train
    train(TrainConfig(arch="stylegan2", data="digits", resolution=16, kimg=2, out="runs/a"))

A run folder (`--out`, see gan/training/run.py) holds config.json, log.jsonl, samples/ (a grid of
G EMA at fixed seeds every tick), snapshots/ (gan/training/state.py), stages/ (PGGAN) and final/,
the trained model that `python -m gan generate` and the explorer load.

Re-running with the same --out (or --resume DIR) continues from the last snapshot, restoring
weights, optimizers, counters, the PGGAN stage, augmentation and all RNG and data-order states,
so that a resumed run computes the same weights as one that was never interrupted.
Under `torchrun --nproc_per_node K` each process trains on 1/K of the global --batch and
gradients are averaged after every backward pass (gan/training/distributed.py); only rank 0 writes.
"""
from __future__ import annotations

import copy
import math
import resource
import sys
import time
from pathlib import Path

import torch

from .augment import AdaptiveAugment
from ..io.checkpoint import save_model
from ..io.fileio import atomic_write_json
from .distributed import Dist, autocast_context
from ..io.images import save_image_grid
from ..models.networks import build_discriminator, build_generator
from ..seeds import parse_seeds, z_from_seeds
from .config import TrainConfig, TrainConfigError, parse_pggan_batch
from .pggan import PGGANTrainer
from .run import (RUN_CONFIG, RunLog, kimg_of, progress_bar, resolve_resume, run_description, save_fakes,
                  save_stage, training_summary, weights_checksum)
from .state import InfiniteSampler, restore_training_state, save_training_snapshot, seed_everything
from .stylegan2 import StyleGAN2Trainer

__all__ = ["TrainConfig", "TrainConfigError", "train", "prepare"]


# ==== the loop =======================================================================================

def train(cfg: TrainConfig) -> Path:
    """Train (or resume) the run described by `cfg`. Returns the final model folder."""
    cfg.validate()
    dist = Dist(cfg.device)
    try:
        return _train(cfg, dist)
    finally:
        dist.close()


def _train(cfg: TrainConfig, dist: Dist) -> Path:
    out = Path(cfg.out)

    # 1. Resume point (rank 0 reads it, every process gets the result). Mismatches are refused here,
    #    before anything is written; options left at auto take the stored run's values.
    point, error = None, None
    if dist.is_main:
        try:
            point = resolve_resume(cfg)
        except TrainConfigError as e:
            error = str(e)
    loaded = point.loaded if point is not None else None
    error, point = dist.broadcast_object((error, point.without_tensors() if point is not None else None))
    if error:
        raise TrainConfigError(error)
    cfg = point.cfg

    # 2. Data: an unusable dataset stops the run before anything is written.
    cfg, ds = prepare(cfg, dist.world)
    model_cfg = cfg.model_config()
    world, rank, device = dist.world, dist.rank, dist.device
    if cfg.batch % world or any(b % world for b in parse_pggan_batch(cfg.pggan_batch).values()):
        raise TrainConfigError(f"--batch {cfg.batch} (and every --pggan-batch) must be a multiple of the "
                               f"{world} processes")

    # 3. Networks, optimizers, augmentation, data order.
    torch.manual_seed(cfg.seed)  # the same initial weights on every process (rank 0's are broadcast too)
    G = build_generator(model_cfg).to(device).train().requires_grad_(False)
    D = build_discriminator(model_cfg).to(device).train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    channels_last = cfg.uses_channels_last
    if channels_last:
        for net in (G, D, G_ema):
            net.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    augment = AdaptiveAugment(cfg.augment, max(cfg.augment_p, 0.0), cfg.ada_target, cfg.ada_kimg)
    amp = lambda: autocast_context(device, cfg.precision)  # noqa: E731
    trainer_cls = PGGANTrainer if cfg.arch == "pggan" else StyleGAN2Trainer
    trainer = trainer_cls(cfg, G, D, augment, dist, amp)
    sampler = InfiniteSampler(len(ds), cfg.seed)
    nets = {"G": G, "D": D, "G_ema": G_ema}
    counters = {"cur_nimg": 0, "step": 0, "tick": 0, "seconds": 0.0}

    # 4. Restore the snapshot, or start fresh with per-process random streams.
    if point.snapshot:
        snap_tensors, snap_state = dist.broadcast_object(loaded)
        restore_training_state(snap_tensors, snap_state, nets, trainer, augment, sampler, counters, dist)
        del snap_tensors, loaded
    else:
        for net in nets.values():
            dist.broadcast_module(net)
        seed_everything(cfg.seed * 7919 + rank + 1)

    # 5. The run folder: config, log, reals (rank 0 only).
    log = RunLog(out, enabled=dist.is_main)
    grid_z = z_from_seeds(parse_seeds(cfg.grid_seeds), G.z_dim).to(device)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / RUN_CONFIG, run_description(cfg, model_cfg, ds, dist))
        (out / "samples").mkdir(exist_ok=True)
        if point.snapshot:
            log.truncate_after(counters["cur_nimg"])
            log.write(event="resume", snapshot=str(point.snapshot), notes=list(point.notes), kimg=kimg_of(counters))
        else:
            log.truncate_after(-1)
            log.write(event="start", kimg=0.0, world_size=world, device=str(device), config=cfg.to_dict())
            # Evenly spread over the original images (not their mirrored copies): sorted sets (emoji
            # by code point) would otherwise show only their first kind of image.
            n_reals = min(ds.num_images, len(grid_z))
            spread = [i * ds.num_images // n_reals for i in range(n_reals)]
            save_image_grid(ds.get_batch(spread).float() / 127.5 - 1,
                            out / "samples" / "reals.png")
            save_fakes(G_ema, grid_z, cfg.resolution, out, 0)
        log.write(event="dataset", kimg=kimg_of(counters), **ds.summary(),
                  skipped_files=[{"path": p, "reason": r} for p, r in ds.skipped[:100]])
    total_nimg = int(round(cfg.kimg * 1000))
    warn_if_pggan_stops_early(cfg, dist)

    # 6. The loop: step after step; at every tick a log line and a sample grid; every --snap ticks a snapshot.
    bar = progress_bar(cfg, counters, enabled=dist.is_main and cfg.progress)
    tick_stats = TickStats()
    tick_start_nimg, tick_start_time = counters["cur_nimg"], time.perf_counter()
    session_start = time.perf_counter() - counters["seconds"]
    done = counters["cur_nimg"] >= total_nimg
    while not done:
        # 6a. Schedule (PGGAN stage and fade-in); keep a model of every finished stage.
        event = trainer.begin_step(counters["cur_nimg"])
        if event and dist.is_main:
            if "finished_depth" in event:
                save_stage(out, G_ema, model_cfg, cfg, ds, event["finished_depth"], counters)
            log.write(event="stage", kimg=kimg_of(counters), **event)

        # 6b. This process's slice of the global batch.
        batch = trainer.batch_size(counters["cur_nimg"])
        local = sampler.take(batch)[rank * batch // world:(rank + 1) * batch // world]
        real = trainer.real_images(ds.get_batch(local))
        if channels_last:
            real = real.contiguous(memory_format=torch.channels_last)

        # 6c. Train G and D, then keep the processes' buffers equal and update G EMA.
        tick_stats.add(trainer.step(real, counters["step"]))
        dist.sync_buffers(G.mapping)  # w_avg is tracked from each process's own latents
        ema_update(G_ema, G, ema_beta(cfg, counters["cur_nimg"], batch))
        counters["cur_nimg"] += batch
        counters["step"] += 1
        done = counters["cur_nimg"] >= total_nimg
        if bar is not None:
            bar.update(min(cfg.kimg, counters["cur_nimg"] / 1000) - bar.n)

        # 6d. Tick: log, sample grid, maybe a snapshot.
        if not done and counters["cur_nimg"] < tick_start_nimg + cfg.tick_kimg * 1000:
            continue
        counters["tick"] += 1
        now = time.perf_counter()
        counters["seconds"] = now - session_start
        img_per_s = (counters["cur_nimg"] - tick_start_nimg) / max(now - tick_start_time, 1e-9)
        record = tick_record(cfg, counters, tick_stats.take_means(dist), img_per_s, now - tick_start_time,
                             trainer, augment, device)
        if dist.is_main:
            log.write(**record)
            save_fakes(G_ema, grid_z, cfg.resolution, out, counters["cur_nimg"])
            if bar is not None:
                bar.set_postfix_str(f"{img_per_s:.0f} img/s", refresh=False)
        if done or counters["tick"] % cfg.snap == 0:
            path = save_training_snapshot(out, cfg, model_cfg, nets, trainer, augment, sampler, counters, dist)
            if dist.is_main:
                log.write(event="snapshot", kimg=kimg_of(counters), file=str(path))
        tick_start_nimg, tick_start_time = counters["cur_nimg"], time.perf_counter()
    if bar is not None:
        bar.close()

    # 7. The final model (G EMA + D) and, for PGGAN, the last stage; checksums prove the processes agree.
    sums = dist.all_gather_object(weights_checksum(nets))
    final = out / "final"
    if dist.is_main:
        summary = training_summary(cfg, counters, ds)
        save_model(final, G_ema, model_cfg, D=D, training=summary, dataset=ds.summary())
        if cfg.arch == "pggan":
            save_stage(out, G_ema, model_cfg, cfg, ds, G_ema.depth, counters)
        log.write(event="checksums", kimg=kimg_of(counters), ranks=sums, identical=len(set(sums)) == 1)
        log.write(event="done", kimg=kimg_of(counters), steps=counters["step"], seconds=round(counters["seconds"], 3),
                  final=str(final))
        print(f"trained {kimg_of(counters):.3f} kimg in {counters['step']} steps; final model: {final}",
              file=sys.stderr)
    dist.barrier()
    return final


# ==== helpers ==========================================================================================

def prepare(cfg: TrainConfig, gpus: int = 1):
    """Resolve every auto option for `gpus` processes and load the dataset: (resolved TrainConfig, dataset)."""
    from ..data import load_dataset
    cfg = cfg.validate().resolve(gpus).validate()
    ds = load_dataset(cfg.data, cfg.resolution, channels=cfg.channels, xflip=cfg.xflip, max_images=cfg.max_images)
    return cfg, ds


def warn_if_pggan_stops_early(cfg: TrainConfig, dist: Dist) -> None:
    if cfg.arch != "pggan" or not dist.is_main:
        return
    stable_from = 2 * (int(math.log2(cfg.resolution)) - 2) * cfg.phase_kimg  # the final stage's stable phase
    if cfg.kimg <= stable_from:
        print(f"warning: --kimg {cfg.kimg} ends before {cfg.resolution}x{cfg.resolution} is stable (from "
              f"{stable_from:g} kimg on with --phase-kimg {cfg.phase_kimg:g}); the final model will be smaller",
              file=sys.stderr)


def ema_beta(cfg: TrainConfig, cur_nimg: int, batch: int) -> float:
    """G EMA decay per step: a half-life of ema_kimg, at most ema_rampup x the images seen so far."""
    ema_nimg = cfg.ema_kimg * 1000
    if cfg.ema_rampup > 0:
        ema_nimg = min(ema_nimg, cur_nimg * cfg.ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):  # w_avg, PGGAN stage, noise constants
        b_ema.copy_(b)


class TickStats:
    """Running sums of a tick's losses (kept on the device: no sync per step)."""

    def __init__(self):
        self.sums: dict[str, list] = {}

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for k, v in stats.items():
            entry = self.sums.setdefault(k, [0.0, 0])
            entry[0] = entry[0] + v.detach().float()
            entry[1] += 1

    def take_means(self, dist: Dist) -> dict[str, float]:
        """Each loss's mean over the tick and over the processes; the sums start again from zero."""
        out = {}
        for k in sorted(self.sums):  # same order on every process for the collectives
            total, count = self.sums[k]
            out[k] = float(dist.all_reduce_mean(torch.as_tensor(total, dtype=torch.float32) / count))
        self.sums.clear()
        return out


def tick_record(cfg, counters, losses, img_per_s, tick_seconds, trainer, augment, device) -> dict:
    rec = {"event": "tick", "tick": counters["tick"], "kimg": kimg_of(counters), "step": counters["step"],
           "seconds": round(counters["seconds"], 3), "tick_seconds": round(tick_seconds, 3),
           "img_per_s": round(img_per_s, 2), **{k: round(v, 6) for k, v in losses.items()},
           "augment_p": round(augment.p, 6),
           "mem_cpu_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        rec["mem_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1)
    if cfg.arch == "stylegan2":
        rec["pl_mean"] = round(float(trainer.pl_mean), 6)
    else:
        rec.update(resolution=trainer.stage.resolution, alpha=round(trainer.stage.alpha, 6))
    return rec
