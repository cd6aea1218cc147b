"""GAN losses and regularisers as small pure functions (tensors in, tensors out, no state).

StyleGAN2 (Karras et al. 2020): non-saturating logistic loss, R1 penalty on reals, path-length
regularisation. PGGAN (Karras et al. 2018): WGAN-GP with the drift term. The training loops in
`gan/training/stylegan2.py` and `gan/training/pggan.py` compose these; weights (gamma, lambda, ...)
are applied there so that each function here has one meaning.

Shapes: logits / scores [N, 1] or [N]; images [N, C, H, W]; ws [N, num_ws, w_dim].
Functions that take gradients (R1, path length, gradient penalty) build the graph for a second
backward pass (`create_graph=True`), so their results can be minimised.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


# ---- StyleGAN2: non-saturating logistic loss -------------------------------------------------------

def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G loss -log(sigmoid(D(G(z)))) = softplus(-logits), averaged over the batch."""
    return F.softplus(-fake_logits).mean()


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D loss softplus(D(G(z))) + softplus(-D(x)), each averaged over its batch."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ||grad_x D(x)||^2 per real image -> [N].

    `real_img` must require grad and `real_logits` be computed from it. Multiply by gamma / 2
    for the loss.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3])


# ---- StyleGAN2: path-length regularisation -------------------------------------------------------

def path_lengths(img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """||J_w^T y|| per sample -> [N], with y ~ N(0, I) / sqrt(H * W) (StyleGAN2 eq. 4).

    `ws` must require grad and `img` be generated from it. `noise` [N, C, H, W] may be given
    (for tests); otherwise it is drawn from the global torch RNG.
    """
    if noise is None:
        noise = torch.randn_like(img)
    noise = noise / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


def updated_pl_mean(pl_mean: torch.Tensor, lengths_mean: torch.Tensor, decay: float = 0.01) -> torch.Tensor:
    """Exponential moving average of the path length: pl_mean + decay * (mean - pl_mean).

    Differentiable in `lengths_mean` (the official penalty keeps this in the graph); store a detached copy.
    """
    return pl_mean.lerp(lengths_mean.to(pl_mean.dtype), decay)


def path_length_penalty(lengths: torch.Tensor, pl_mean: torch.Tensor) -> torch.Tensor:
    """(||J_w^T y|| - a)^2 per sample -> [N], a = the running mean path length (detach it for a constant a)."""
    return (lengths - pl_mean).square()


# ---- PGGAN: WGAN-GP with drift ---------------------------------------------------------------------

def wgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """G loss -D(G(z)), averaged."""
    return -fake_scores.mean()


def wgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Critic loss D(G(z)) - D(x), averaged."""
    return fake_scores.mean() - real_scores.mean()


def interpolate_images(real: torch.Tensor, fake: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Random points on lines between reals and fakes: real + u * (fake - real), u [N, 1, 1, 1]."""
    return torch.lerp(real.detach(), fake.detach(), u.to(real.dtype)).requires_grad_(True)


def gradient_penalty(mixed_scores: torch.Tensor, mixed_img: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (||grad D(x_hat)|| - target)^2 / target^2 per sample -> [N].

    Multiply by lambda (10) for the loss. PGGAN's official code divides by target^2 so that
    other targets keep the same scale.
    """
    (grad,) = torch.autograd.grad(mixed_scores.sum(), mixed_img, create_graph=True)
    norms = grad.square().sum(dim=[1, 2, 3]).add(1e-12).sqrt()  # eps: keeps the gradient finite at 0
    return (norms - target).square() / target ** 2


def drift_penalty(real_scores: torch.Tensor) -> torch.Tensor:
    """PGGAN's drift term D(x)^2 per sample -> [N] (times epsilon = 0.001 for the loss)."""
    return real_scores.reshape(real_scores.shape[0], -1).square().mean(dim=1)
