"""`python -m gan metrics`: options and the call into evaluate.metrics_main.

The options import no torch (registry.py defers it to the metrics' own modules), so `--help` and usage
errors answer at once; evaluate.py is imported when the command runs.
"""
from __future__ import annotations

import argparse

from ..cli import int_at_least
from .registry import DEFAULT_METRICS, DEFAULT_NUM, METRICS


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m gan metrics` (an argparse parser or subparser)."""
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--data", required=True,
                        help="real images: an image folder, a zip, or fashion-mnist | emoji | digits")
    parser.add_argument("--metrics", default=DEFAULT_METRICS,
                        help=f"comma-separated, from: {', '.join(METRICS)} (default {DEFAULT_METRICS}; "
                             "fid, kid, pr and is need --inception; is: Inception Score over 10 splits, "
                             "reported as is and is_std)")
    parser.add_argument("--num", type=int_at_least(2), default=DEFAULT_NUM,
                        help=f"generated images, and real ones when the dataset has that many (default {DEFAULT_NUM}; "
                             "papers use 50000 for FID)")
    parser.add_argument("--inception", metavar="PATH", default=None,
                        help="Inception-v3 TorchScript file pt_inception-2015-12-05-6726825d.pt (as used by "
                             "StyleGAN2-ADA); needed by fid, kid, pr, is; never downloaded")
    parser.add_argument("--batch", type=int_at_least(1), default=64, help="images per batch (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the real sample and the metrics' randomness")
    parser.add_argument("--device", default="cpu", help="torch device for the generator and Inception (default cpu)")
    parser.add_argument("--cache-dir", default="auto", metavar="DIR",
                        help="where real-image Inception features are cached (default: $GAN_CACHE_DIR/metrics, "
                             "else ~/.cache/gan-latent-explorer/metrics)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")


def metrics_command(args: argparse.Namespace) -> int:
    """`python -m gan metrics`: user errors surface as ValueError (printed as one line by the caller)."""
    from .evaluate import metrics_main   # torch: only once the command runs
    metrics_main(args.model, args.data, args.metrics, args.num, args.inception, batch=args.batch, seed=args.seed,
                 cache_dir=None if args.no_cache else args.cache_dir, device=args.device)
    return 0
