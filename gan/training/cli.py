"""`python -m gan train`: options, --dry-run, and the call into the training loop.

The options import no torch (config.py, presets.py), so `--help` and usage errors answer at once; the
loop is imported when the command runs.

Options left unset on the command line stay absent from the namespace, so that re-running a run
folder keeps its stored options and only what is given changes (gan/training/run.py, resolve_resume).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os

from .config import AUGMENT_MODES, TrainConfig
from .presets import CFG_NAMES


def _default(name: str):
    return next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """`python -m gan train` options. Unset options stay absent from the namespace, so that a resumed run
    keeps its stored values and only what is given on the command line changes."""
    def opt(group, flag: str, type_, help_: str, **kw):
        default = _default(flag[2:].replace("-", "_"))
        group.add_argument(flag, type=type_, default=argparse.SUPPRESS, help=f"{help_} [default: {default!r}]", **kw)

    g = parser.add_argument_group("what to train")
    opt(g, "--arch", str, "architecture", choices=("stylegan2", "pggan"))
    opt(g, "--cfg", str, "StyleGAN2 base configuration, as the official StyleGAN2-ADA trainer's --cfg: "
        "auto (from resolution and process count: batch max(min(gpus x min(4096 / res, 32), 64), gpus), "
        "lr 0.0025 (0.002 from 1024 px), gamma 0.0002 x res^2 / that batch, EMA batch x 10 / 32 kimg, "
        "ramp-up 0.05, mapping 2), or stylegan2 | paper256 | paper512 | paper1024 | cifar (their fixed numbers "
        "and the official 512-channel networks); every explicit flag below overrides its one value, and "
        "--batch does not change gamma, EMA or the minibatch-stddev group",
        choices=CFG_NAMES)
    opt(g, "--data", str, "image folder, .zip of images, or a built-in: fashion-mnist | emoji | digits")
    opt(g, "--resolution", int, "training resolution, a power of two from 8 to 2048")
    opt(g, "--channels", int, "1 = greyscale, 3 = RGB, 0 = auto (1 for digits / fashion-mnist)", choices=(0, 1, 3))
    g.add_argument("--xflip", action="store_true", default=argparse.SUPPRESS, help="add mirrored copies of the images")
    opt(g, "--max-images", int, "use only the first N images")
    g = parser.add_argument_group("model size (0 = from --cfg; 'auto' keeps networks small below 256 px for CPUs)")
    opt(g, "--channel-base", int, "channels at resolution r = min(base / r, max); 0 = the --cfg's (auto: 16384, "
        "32768 from 512 px; PGGAN 8192)")
    opt(g, "--channel-max", int, "most channels per layer; 0 = 512 for named --cfg, else 2 x resolution from 32 "
        "to 512 (16 px: 32, 64 px: 128)")
    opt(g, "--z-dim", int, "latent size; 0 = 512 for named --cfg, else 2 x channel-max from 64 to 512")
    opt(g, "--w-dim", int, "StyleGAN2 intermediate latent size; 0 = z-dim")
    opt(g, "--mapping-layers", int, "StyleGAN2 mapping network depth; 0 = the --cfg's (auto and cifar 2, else 8)")
    opt(g, "--mbstd-group", int, "D's minibatch-stddev group size; 0 = the --cfg's (auto: min(its batch / gpus, "
        "4); PGGAN 4)")
    g = parser.add_argument_group("length and output")
    opt(g, "--kimg", float, "train until this many thousand real images have been shown")
    opt(g, "--tick-kimg", float, "a log line and a sample grid every N kimg; 0 = kimg / 10, at most 4")
    opt(g, "--snap", int, "a training snapshot every N ticks (and at the end)")
    opt(g, "--keep-snapshots", int, "how many snapshot files to keep")
    opt(g, "--grid-seeds", str, "seeds of the sample grids")
    opt(g, "--seed", int, "random seed: initialisation, latents, data order")
    opt(g, "--out", str, "run folder; run again with the same --out to resume")
    opt(g, "--resume", str, "resume from this run folder or snapshot file [default: --out if it holds a run]")
    g = parser.add_argument_group("optimisation (0 / -1 = from --cfg)")
    opt(g, "--batch", int, "global batch over all processes (PGGAN: at the final resolution); 0 = the --cfg's "
        "(PGGAN 32)")
    opt(g, "--lr", float, "Adam learning rate; 0 = the --cfg's (auto 0.0025, 0.002 from 1024 px; PGGAN 0.001)")
    opt(g, "--ema-kimg", float, "G EMA half-life in kimg; -1 = the --cfg's (auto: its batch x 10 / 32; PGGAN: "
        "batch x 10 / 32)")
    opt(g, "--ema-rampup", float, "the EMA half-life is at most this x the images seen so far; 0 = off; -1 = the "
        "--cfg's (auto and cifar 0.05, paper configs off; PGGAN 0.05)")
    opt(g, "--gamma", float, "StyleGAN2 R1 weight; -1 = the --cfg's (auto: 0.0002 x resolution^2 / its batch)")
    opt(g, "--pl-weight", float, "StyleGAN2 path-length regularisation weight; 0 = off; -1 = the --cfg's (2, "
        "cifar 0)")
    g.add_argument("--pl-detach-mean", action="store_true", default=argparse.SUPPRESS,
                   help="StyleGAN2: treat the path-length target a as a constant, as the paper's eq. 4 reads; "
                        "the official code (our default) keeps a, just updated with this batch's lengths, in the "
                        "graph, which changes the penalty's gradient by about 1%%")
    opt(g, "--mixing-prob", float, "StyleGAN2 style-mixing regularisation probability; 0 = off; -1 = the --cfg's "
        "(0.9, cifar 0)")
    opt(g, "--g-reg-interval", int, "StyleGAN2 lazy regularisation: path length every N steps")
    opt(g, "--d-reg-interval", int, "StyleGAN2 lazy regularisation: R1 every N steps")
    opt(g, "--phase-kimg", float, "PGGAN kimg per fade-in and per stabilise phase; 0 = all stages fit in --kimg")
    opt(g, "--pggan-batch", str, "PGGAN global batch per resolution, e.g. 4:64,8:64,16:32; '' = 2 x --batch "
        "below the last two resolutions")
    opt(g, "--gp-lambda", float, "PGGAN WGAN-GP weight")
    opt(g, "--drift", float, "PGGAN drift-term epsilon")
    g = parser.add_argument_group("augmentation (differentiable, applied to reals and fakes)")
    opt(g, "--augment", str, "none | fixed | ada | auto (StyleGAN2: ada, the official default for every --cfg; "
        "PGGAN: none)", choices=("auto",) + AUGMENT_MODES)
    opt(g, "--augment-p", float, "probability (fixed) or starting probability (ada); -1 = fixed 1, ada 0")
    opt(g, "--ada-target", float, "ADA target for E[sign(D(real))]")
    opt(g, "--ada-kimg", float, "ADA speed: p can go from 0 to 1 in this many kimg (official 500; short runs may "
        "want 100, the official value when fine-tuning)")
    g = parser.add_argument_group("performance")
    opt(g, "--device", str, "where to train", choices=("auto", "cpu", "cuda"))
    opt(g, "--precision", str, "fp32, or bf16 autocast (for GPUs: on a CPU bf16 measured ~0.7x fp32)",
        choices=("fp32", "bf16"))
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                   help="channels-last memory format [default: on]")
    g.add_argument("--compile", action="store_true", default=argparse.SUPPRESS,
                   help="torch.compile the main (non-regularisation) passes; for GPUs: on a CPU it measured "
                        "~0.7x eager at 32 px, after a minute of compiling")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                   help="no progress bar")
    g.add_argument("--dry-run", action="store_true", help="print the resolved config and stop, writing nothing")


def given_options(args: argparse.Namespace) -> dict:
    """The TrainConfig options given on the command line (unset ones are absent from the namespace)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in fields}


def train_command(args: argparse.Namespace) -> int:
    from .loop import prepare, train                  # torch: only once training (or --dry-run) runs
    from .run import resolve_resume, run_description
    point = resolve_resume(given_options(args), load=False)  # merged with the stored run's options, checked
    if getattr(args, "dry_run", False):
        cfg, ds = prepare(point.cfg, gpus=int(os.environ.get("WORLD_SIZE", "1")))  # as torchrun would start it
        description = run_description(cfg, cfg.model_config(), ds, None)
        description["resume_from"] = str(point.snapshot) if point.snapshot else None
        print(json.dumps(description, indent=2))
        return 0
    train(point.cfg)
    return 0
