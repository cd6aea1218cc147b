"""Generator metrics: a registry of small functions, one module per metric, JSONL results.

    from gan.metrics import METRICS, compute_metrics, metrics_main
    compute_metrics(G, dataset, ["swd", "msssim"], num=2000)  # -> {"swd": ..., "swd_32": ..., "msssim": ...}

Metrics (names for --metrics): swd, msssim, fid, kid, pr, is; fid, kid, pr and is need the
Inception file.
- swd.py        sliced Wasserstein distance on Laplacian-pyramid patches (PGGAN)
- msssim.py     MS-SSIM (PGGAN's reference arithmetic) and the pairwise diversity score
- stats.py      FID, KID, precision/recall from feature matrices
- inception_score.py  Inception Score from class probabilities (10 splits, as StyleGAN2-ADA)
- inception.py  Inception-v3 features and class probabilities from a user-supplied TorchScript
                file (never downloaded)
- registry.py   METRICS: name -> what it needs + the function that computes it
- evaluate.py   one pass over generated and real images, the cache, metrics.jsonl, the CLI
"""
from .evaluate import (DEFAULT_METRICS, DEFAULT_NUM, RESULTS_NAME, add_metrics_arguments, append_jsonl,
                       compute_metrics, default_cache_dir, metrics_command, metrics_main, real_sample_indices)
from .inception import INCEPTION_FILE, InceptionError, InceptionFeatures, load_inception
from .inception_score import inception_score
from .msssim import ms_ssim, msssim_diversity
from .registry import METRICS, Metric, parse_metric_names
from .stats import fid, fid_from_stats, kid, precision_recall

# The SWD function stays `gan.metrics.swd.swd`: re-exported here, it would hide the module `swd`.

__all__ = [
    "METRICS", "Metric", "parse_metric_names", "compute_metrics", "metrics_main", "append_jsonl",
    "add_metrics_arguments", "metrics_command", "default_cache_dir", "real_sample_indices",
    "DEFAULT_METRICS", "DEFAULT_NUM", "RESULTS_NAME",
    "INCEPTION_FILE", "InceptionError", "InceptionFeatures", "load_inception",
    "ms_ssim", "msssim_diversity", "fid", "fid_from_stats", "kid", "precision_recall", "inception_score",
]
