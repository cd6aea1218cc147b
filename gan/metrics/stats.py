"""Distribution distances between feature matrices [N, D] (numpy): FID, KID, precision/recall.

The features are usually Inception-v3 pool3 activations (2048-d, see inception.py), but these
functions take any features, which is how the tests check them on Gaussians with known answers.
"""
from __future__ import annotations

import numpy as np
import torch


def _check_features(name: str, feats) -> np.ndarray:
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"{name} must be a feature matrix [N >= 2, D], got shape {list(feats.shape)}")
    if not np.isfinite(feats).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return feats


def _check_pair(feat_a, feat_b, names=("feat_a", "feat_b")) -> tuple[np.ndarray, np.ndarray]:
    a, b = _check_features(names[0], feat_a), _check_features(names[1], feat_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} differ in feature size: {a.shape[1]} vs {b.shape[1]}")
    return a, b


def feature_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (unbiased, as np.cov) of a feature matrix [N, D]."""
    feats = _check_features("features", feats)
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def fid_from_stats(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray) -> float:
    """Frechet distance between N(mu_a, sigma_a) and N(mu_b, sigma_b).

    ||mu_a - mu_b||^2 + tr(sigma_a + sigma_b - 2 (sigma_a sigma_b)^(1/2)). The trace of the matrix
    square root equals that of (A^(1/2) B A^(1/2))^(1/2), whose argument is symmetric PSD: two
    symmetric eigendecompositions, no complex round-off as with a general sqrtm.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape or sigma_a.shape != (len(mu_a), len(mu_a)):
        raise ValueError(f"mismatched statistics: mu {mu_a.shape} / {mu_b.shape}, sigma {sigma_a.shape} / {sigma_b.shape}")
    root_a = _sqrt_psd(sigma_a)
    middle = np.linalg.eigvalsh(root_a @ sigma_b @ root_a)
    trace_sqrt = np.sqrt(np.clip(middle, 0, None)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt)


def fid(feat_a, feat_b) -> float:
    """Frechet Inception Distance between two feature matrices [N, D] and [M, D] (lower = closer)."""
    a, b = _check_pair(feat_a, feat_b)
    return fid_from_stats(*feature_stats(a), *feature_stats(b))


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(x.y / D + 1)^3 for all row pairs. Dot products in float32, as the official code's float32
    features give; the cube in float64."""
    gram = x.astype(np.float32) @ y.astype(np.float32).T
    return (gram.astype(np.float64) / x.shape[1] + 1) ** 3


def kid(feat_a, feat_b, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0) -> float:
    """Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel (x.y / D + 1)^3,
    averaged over `num_subsets` random subsets of m = min(N, M, max_subset_size) samples from each
    set, as in the official StyleGAN2-ADA code. Near 0 (it can be slightly negative) for samples
    of one distribution.

    When the sets are small enough, the kernel between all samples is computed once and the
    subsets read from it: the same numbers, many times faster than 3 products per subset.
    """
    a, b = _check_pair(feat_a, feat_b)
    if num_subsets < 1 or max_subset_size < 2:
        raise ValueError(f"need num_subsets >= 1 and max_subset_size >= 2, got {num_subsets}, {max_subset_size}")
    m = min(len(a), len(b), max_subset_size)
    n = len(a) + len(b)
    full = n <= 12_000 and n * n <= 3 * num_subsets * m * m
    kernel = _poly_kernel(np.concatenate([a, b]), np.concatenate([a, b])) if full else None
    rs = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        ia = rs.choice(len(a), m, replace=False)
        ib = rs.choice(len(b), m, replace=False)
        if full:
            ib = ib + len(a)
            k_xx, k_yy, k_xy = kernel[np.ix_(ia, ia)], kernel[np.ix_(ib, ib)], kernel[np.ix_(ia, ib)]
        else:
            x, y = a[ia], b[ib]
            k_xx, k_yy, k_xy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        total += within - 2 * k_xy.sum() / (m * m)
    return float(total / num_subsets)


def _pairwise_distances(rows: torch.Tensor, cols: torch.Tensor, batch: int):
    """Yield (start, [b, len(cols)] Euclidean distances) for row batches (bounded memory)."""
    for start in range(0, len(rows), batch):
        yield start, torch.cdist(rows[start:start + batch], cols)


def knn_radii(feats: torch.Tensor, k: int, batch: int = 1000) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row: [N]."""
    radii = torch.empty(len(feats), dtype=feats.dtype)
    for start, dist in _pairwise_distances(feats, feats, batch):
        radii[start:start + len(dist)] = dist.kthvalue(k + 1, dim=1).values  # +1: the row itself, at 0
    return radii


def _fraction_inside(manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor, batch: int) -> float:
    """Fraction of probes inside at least one ball (manifold_i, radii_i)."""
    inside = 0
    for _, dist in _pairwise_distances(probes, manifold, batch):
        inside += int((dist <= radii[None, :]).any(dim=1).sum())
    return inside / len(probes)


def precision_recall(feat_real, feat_fake, k: int = 3, batch: int = 1000) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): {"precision", "recall"} in [0, 1].

    Each set's manifold is the union of balls around its samples reaching the k-th nearest
    neighbour in that set. Precision: the fraction of generated samples inside the real manifold
    (quality); recall: the fraction of real samples inside the generated manifold (coverage).
    """
    real, fake = _check_pair(feat_real, feat_fake, ("feat_real", "feat_fake"))
    if not 1 <= k < min(len(real), len(fake)):
        raise ValueError(f"k must be in 1..{min(len(real), len(fake)) - 1} for these sets, got {k}")
    # float32 distances; centring first keeps the norms small, and with them cdist's round-off.
    centre = real.mean(axis=0)
    real_t, fake_t = torch.from_numpy(real - centre).float(), torch.from_numpy(fake - centre).float()
    precision = _fraction_inside(real_t, knn_radii(real_t, k, batch), fake_t, batch)
    recall = _fraction_inside(fake_t, knn_radii(fake_t, k, batch), real_t, batch)
    return {"precision": precision, "recall": recall}
