"""Inception Score (Salimans et al. 2016) from class probabilities, as StyleGAN2-ADA computes it.

IS = exp(E_x KL(p(y|x) || p(y))): high when each image is confidently one class (sharp p(y|x))
and the classes are spread over the set (broad marginal p(y)). Ranges from 1 (every image gets
the same distribution) to the number of classes (each image one class, all classes equally
often). The official metric splits the N generated images into 10 consecutive parts
(part i = rows i*N//10 .. (i+1)*N//10), computes the score on each part with that part's own
marginal, and reports the mean and the standard deviation (numpy's, ddof 0) over the parts.

The probabilities come from the Inception file (inception.py: `InceptionFeatures.probabilities`);
this function takes any probability matrix, which is how the tests check it.
"""
from __future__ import annotations

NUM_SPLITS = 10


def inception_score(probs, num_splits: int = NUM_SPLITS) -> tuple[float, float]:
    """(mean, std) of the Inception Score over `num_splits` parts of probs [N, classes] (rows sum to 1)."""
    import numpy as np   # here: the command line reads NUM_SPLITS (registry.py) and should not wait for numpy
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"class probabilities must be a matrix [N, classes], got shape {list(probs.shape)}")
    if num_splits < 1 or len(probs) < num_splits:
        raise ValueError(f"the Inception Score needs at least {max(num_splits, 1)} images ({num_splits} splits), "
                         f"got {len(probs)}")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("class probabilities must be finite and non-negative")
    n = len(probs)
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        marginal = part.mean(axis=0, keepdims=True)
        # 0 * log 0 = 0 (the KL convention): exact zeros, e.g. an underflowed softmax, add nothing.
        # Where part > 0 the marginal is > 0 too, so the masked logs are finite.
        positive = part > 0
        log_ratio = np.log(np.where(positive, part, 1.0)) - np.log(np.where(positive, marginal, 1.0))
        kl = np.where(positive, part * log_ratio, 0.0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
