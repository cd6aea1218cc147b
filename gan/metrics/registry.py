"""The metric registry: one small function per metric, reading what the runner gathered.

A metric declares what it needs from the real and generated images (`needs`), so the runner
(evaluate.py) makes a single pass over each set and collects only that:
- "swd":       raw SWD descriptors per pyramid level (swd.image_descriptors)
- "images":    a pool of uint8 images [N, C, R, R] (for MS-SSIM pairs)
- "inception": Inception-v3 pool3 features, float64 [N, 2048]
- "probs":     Inception-v3 class probabilities, float64 [N, 1008] (generated images only: IS
               scores the generator alone, so the real images never need them)
`min_num` is the smallest --num a metric can be computed from (IS: one image per split).
Each function returns a flat dict of floats: the keys that appear in results and metrics.jsonl.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .inception_score import NUM_SPLITS, inception_score

# torch (2-3 s to import) only where a metric is computed, so that the command line's options (cli.py) and
# the names and needs here cost nothing
if TYPE_CHECKING:
    import numpy as np
    import torch

DEFAULT_METRICS = "swd,msssim"
DEFAULT_NUM = 2000


@dataclass
class SampleSet:
    """What was gathered from one image set (real or generated)."""
    count: int = 0
    swd_levels: list[list[torch.Tensor]] = field(default_factory=list)   # per batch, per level
    images: list[torch.Tensor] = field(default_factory=list)             # uint8 batches
    features: list[np.ndarray] = field(default_factory=list)             # Inception batches
    probs: list[np.ndarray] = field(default_factory=list)                # Inception softmax batches

    def descriptors(self) -> list[torch.Tensor]:
        import torch
        return [torch.cat(per_level) for per_level in zip(*self.swd_levels)]

    def image_pool(self) -> torch.Tensor:
        import torch
        return torch.cat(self.images)

    def feature_matrix(self) -> np.ndarray:
        import numpy as np
        return np.concatenate(self.features).astype(np.float64)

    def prob_matrix(self) -> np.ndarray:
        import numpy as np
        return np.concatenate(self.probs).astype(np.float64)


@dataclass
class MetricInputs:
    real: SampleSet
    fake: SampleSet
    resolution: int
    seed: int = 0
    msssim_pairs: int = 1000


@dataclass(frozen=True)
class Metric:
    name: str
    needs: frozenset
    compute: Callable[[MetricInputs], dict]
    description: str
    min_num: int = 2


def _swd(x: MetricInputs) -> dict:
    from . import swd
    return swd.swd_from_descriptors(x.real.descriptors(), x.fake.descriptors(),
                                    swd.pyramid_resolutions(x.resolution), seed=x.seed)


def _msssim(x: MetricInputs) -> dict:
    # The real images' score is the reference: a model as diverse as its data scores about the same.
    from . import msssim
    return {"msssim": msssim.msssim_diversity(x.fake.image_pool(), x.msssim_pairs, seed=x.seed),
            "msssim_real": msssim.msssim_diversity(x.real.image_pool(), x.msssim_pairs, seed=x.seed)}


def _fid(x: MetricInputs) -> dict:
    from . import stats
    return {"fid": stats.fid(x.real.feature_matrix(), x.fake.feature_matrix())}


def _kid(x: MetricInputs) -> dict:
    from . import stats
    return {"kid": stats.kid(x.real.feature_matrix(), x.fake.feature_matrix(), seed=x.seed)}


def _is(x: MetricInputs) -> dict:
    mean, std = inception_score(x.fake.prob_matrix(), NUM_SPLITS)
    return {"is": mean, "is_std": std}


def _pr(x: MetricInputs) -> dict:
    from . import stats
    return stats.precision_recall(x.real.feature_matrix(), x.fake.feature_matrix(), k=3)


METRICS: dict[str, Metric] = {
    "swd": Metric("swd", frozenset({"swd"}), _swd,
                  "sliced Wasserstein distance x1e3 per Laplacian level and average (PGGAN); lower is better"),
    "msssim": Metric("msssim", frozenset({"images"}), _msssim,
                     "mean MS-SSIM of random generated pairs (and of real pairs, for reference); lower = more diverse"),
    "fid": Metric("fid", frozenset({"inception"}), _fid, "Frechet Inception Distance; lower is better"),
    "kid": Metric("kid", frozenset({"inception"}), _kid, "Kernel Inception Distance; lower is better"),
    "pr": Metric("pr", frozenset({"inception"}), _pr,
                 "improved precision (quality) and recall (coverage), k = 3; higher is better"),
    "is": Metric("is", frozenset({"probs"}), _is,
                 f"Inception Score, mean and std over {NUM_SPLITS} splits (StyleGAN2-ADA); "
                 "higher is better", min_num=NUM_SPLITS),
}

# What needs the Inception file (FID, KID, PR: features; IS: class probabilities).
INCEPTION_NEEDS = frozenset({"inception", "probs"})


def needs_inception(names) -> bool:
    return any(METRICS[n].needs & INCEPTION_NEEDS for n in names)


def check_num(names, num: int) -> None:
    """ValueError (one line) when `num` images are too few for one of the metrics `names`."""
    for name in names:
        if num < METRICS[name].min_num:
            raise ValueError(f"--num must be at least {METRICS[name].min_num} for {name}, got {num}")


def parse_metric_names(metrics) -> list[str]:
    """'swd,fid' or ['swd', 'fid'] -> validated, de-duplicated names in the given order."""
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = []
    for item in items:
        name = str(item).strip().lower()
        if not name:
            continue
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}: choose from {', '.join(METRICS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"no metrics given: choose from {', '.join(METRICS)}")
    return names
