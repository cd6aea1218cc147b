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
- evaluate.py   one pass over generated and real images, the cache, metrics.jsonl
- cli.py        the options of `python -m gan metrics`

The names below are imported on first use (gan/lazy_exports.py): the command line's options (cli.py,
registry.py) import no torch, so `python -m gan metrics --help` answers at once. The SWD function stays
`gan.metrics.swd.swd`: exported here, it would hide the module `swd`.
"""
from ..lazy_exports import lazy_exports
# Bound now (it imports nothing): a lazy name is looked up only while the package lacks it, and the first import of
# the submodule of the same name would set the package's `inception_score` to that module.
from .inception_score import inception_score

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "evaluate": ("RESULTS_NAME", "append_jsonl", "compute_metrics", "default_cache_dir", "metrics_main",
                 "real_sample_indices"),
    "cli": ("add_metrics_arguments", "metrics_command"),
    "registry": ("METRICS", "Metric", "parse_metric_names", "DEFAULT_METRICS", "DEFAULT_NUM"),
    "inception": ("INCEPTION_FILE", "InceptionError", "InceptionFeatures", "load_inception"),
    "msssim": ("ms_ssim", "msssim_diversity"),
    "stats": ("fid", "fid_from_stats", "kid", "precision_recall"),
})
__all__.insert(0, inception_score.__name__)
