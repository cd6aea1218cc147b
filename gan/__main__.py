"""python -m gan new|info|generate|pack|import|train|metrics  (each has --help)."""
from __future__ import annotations

import argparse
import sys

from .cli import positive_int, run_command
from .metrics.cli import add_metrics_arguments, metrics_command
from .models.config import ARCHS, NOISE_MODES, ModelConfig
from .training.cli import add_train_arguments, train_command


def cmd_new(args) -> int:
    from .commands import new_model
    cfg = ModelConfig(arch=args.arch, img_resolution=args.resolution, img_channels=args.channels,
                      z_dim=args.z_dim, w_dim=args.w_dim if args.arch == "stylegan2" else args.z_dim,
                      mapping_layers=args.mapping_layers, channel_base=args.channel_base,
                      channel_max=args.channel_max)
    folder = new_model(args.out, cfg, seed=args.seed, force=args.force)
    print(f"wrote {folder}", file=sys.stderr)
    return 0


def cmd_info(args) -> int:
    from .commands import info_json
    print(info_json(args.model))
    return 0


def cmd_generate(args) -> int:
    from .commands import generate
    from .seeds import parse_seeds
    seeds = parse_seeds(args.seeds)
    written = generate(args.model, seeds, args.out, truncation_psi=args.trunc,
                       truncation_cutoff=args.trunc_cutoff, noise_mode=args.noise_mode, grid=args.grid,
                       class_idx=args.class_idx)
    print(f"wrote {len(written)} file(s) to {args.out}", file=sys.stderr)
    return 0


def cmd_pack(args) -> int:
    from .commands import pack_model
    out = pack_model(args.run, args.out, force=args.force)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from .importers import import_pickle
    out, model = import_pickle(args.src, args.out, force=args.force)
    if model is None:
        print(f"{out} already holds this import of {args.src}: nothing to do", file=sys.stderr)
        return 0
    nets = "G and D" if model.D is not None else "G"
    print(f"wrote {out}: {model.format}, {model.cfg.img_resolution}x{model.cfg.img_resolution}, {nets}"
          + "".join(f"; {note}" for note in model.notes), file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line. Nothing here imports torch (each command imports what it needs when it runs), so
    `--help` and usage errors answer at once."""
    parser = argparse.ArgumentParser(prog="python -m gan", description="Train, inspect and sample StyleGAN2 / PGGAN models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("new", help="create a randomly initialised model folder",
                       description="Create a randomly initialised model folder (config.json + G/D safetensors).")
    p.add_argument("--arch", choices=ARCHS, default="stylegan2")
    p.add_argument("--resolution", type=int, required=True, help="output size, a power of two (8..2048)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1 = greyscale, 3 = RGB")
    p.add_argument("--channel-base", type=int, default=0,
                   help="channels at resolution r = min(base / r, max) (PGGAN: min(2 base / r, max)); 0 = official default")
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--z-dim", type=positive_int, default=512)
    p.add_argument("--w-dim", type=positive_int, default=512, help="StyleGAN2 only (PGGAN uses z-dim)")
    p.add_argument("--mapping-layers", type=positive_int, default=8, help="StyleGAN2 mapping network depth")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed")
    p.add_argument("--out", required=True, help="model folder to create")
    p.add_argument("--force", action="store_true", help="replace a model already in --out")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("info", help="print a model's architecture and parameter counts as JSON",
                       description="Print one JSON object: arch, resolutions, latent sizes, parameter counts.")
    p.add_argument("--model", required=True, help="model folder or NVIDIA network .pkl")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("generate", help="render images for seeds",
                       description="Render one PNG per seed into a folder, or one grid PNG with --grid.")
    p.add_argument("--model", required=True, help="model folder or NVIDIA network .pkl (imported on the fly)")
    p.add_argument("--seeds", required=True, help="seeds and inclusive ranges, e.g. 0-7,42")
    p.add_argument("--class", dest="class_idx", type=int, default=None, metavar="N",
                   help="class label of a conditional model (e.g. cifar10.pkl: 0..9)")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi (1 = none, 0.7 = typical)")
    p.add_argument("--trunc-cutoff", type=int, default=None, help="truncate only the first N ws")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const")
    p.add_argument("--grid", action="store_true", help="write one grid PNG to --out instead of a folder")
    p.add_argument("--out", required=True, help="output folder (or a .png path with --grid)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("pack", help="make a shareable model folder (G EMA only) from a training run",
                       description="Copy a training run's final model into a new folder with the generator only "
                       "(the G EMA weights; no discriminator) and, for PGGAN, the generator of each stage snapshot "
                       "under stages/, ready for the explorer and for sharing.")
    p.add_argument("--run", required=True, help="training run folder (uses its final/) or a model folder")
    p.add_argument("--out", required=True, help="model folder to create")
    p.add_argument("--force", action="store_true", help="replace a model already in --out")
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("import", help="import an NVIDIA StyleGAN2 network pickle (.pkl) into a model folder",
                       description="Import an NVIDIA StyleGAN2 network pickle into a model folder, safely: the pickle "
                       "is parsed as data (no code from it runs). Reads stylegan2-ada-pytorch pickles (ffhq.pkl, "
                       "network-snapshot-*.pkl ...), stylegan3's --cfg=stylegan2 pickles and TensorFlow StyleGAN2 "
                       "pickles (stylegan2-ffhq-config-f.pkl ...); imports G_ema (Gs) as the generator and D when it "
                       "maps onto ours. StyleGAN3-T/R, StyleGAN1 and PGGAN pickles are refused.")
    p.add_argument("src", help="network pickle (.pkl)")
    p.add_argument("--out", required=True, help="model folder to create")
    p.add_argument("--force", action="store_true", help="replace a different model already in --out")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("train", help="train a StyleGAN2 or PGGAN model",
                       description="Train a StyleGAN2 or PGGAN model (also under torchrun).")
    add_train_arguments(p)
    p.set_defaults(func=train_command)

    p = sub.add_parser("metrics", help="evaluate a model (SWD, MS-SSIM, FID, KID, IS, precision/recall)",
                       description="Evaluate a model; prints one JSON object and appends it to <model>/metrics.jsonl.")
    add_metrics_arguments(p)
    p.set_defaults(func=metrics_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
