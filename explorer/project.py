"""Projection: find the latent (and, for StyleGAN2, the noise maps) whose image matches a target image,
as NVIDIA's stylegan2-ada-pytorch `projector.py` does.

    target = load_target("photo.jpg", G.img_resolution, G.img_channels).image     # explorer.targets
    result = project(G, target, space="w+", steps=500, seed=0, D=load_discriminator(folder))
    img = synthesize(G, result.ws, result.noise)          # reproduces result.image exactly

The optimisation is the official one: start at w_avg (the mean of `w_avg_samples` untruncated w, the
z drawn from np.random.RandomState(123) as there), w_std = sqrt(sum |w - w_avg|^2 / N); Adam (betas
0.9, 0.999) over w (space "w": one w broadcast to all num_ws layers) or ws (space "w+": one w per
layer) and over every noise map; learning rate ramped up linearly over the first 5% of the steps and
down by a half cosine over the last 25%; Gaussian noise of scale w_std * 0.05 * max(0, 1 - t / 0.75)^2
added to w at step t (a fraction of the run); the noise maps start as N(0, 1), are pushed towards
spatially uncorrelated values by the multi-scale autocorrelation regulariser (weight 1e5) and are
re-normalised to zero mean and unit variance after each step. Random draws (initial noise maps, the
w noise) come from a torch generator seeded with `seed`, so a fixed seed gives the same result.

What differs. (1) Nothing may be downloaded, so the official loss, LPIPS on VGG16 features alone, is
replaced by the mean squared pixel error at several scales (full size, 1/2 and 1/4 by average pooling,
summed) plus, when a discriminator is given, the squared difference of its block activations, each
normalised by the target's mean square (the model's own features), plus, only when the user supplies
VGG16 weights as a file (`vgg16=`: a path or an explorer.lpips.LPIPS; never fetched), `lpips_weight` x
LPIPS(image, target), the target's features computed once (explorer.lpips: with LPIPS' learned lin
weights in the file, the real LPIPS; without, every channel weighing 1). `lpips_weight` 1 is
projector.py's own weight for LPIPS, its only image term, against the same noise regulariser (1e5); it
is not tuned on real VGG16 weights: none are at hand here, only random ones (as in the tests). With
random weights (the unlearned baseline, He-scaled, seed 0), 4 seeds of the shipped fashion model, 150
steps, W+: 29.1 dB without LPIPS, 30.7 with lpips_weight 1, 31.8 with 10, so the term works with the
pixel loss rather than against it; what trained weights do, and the scale of the learned LPIPS against
the baseline's, is not measured. `pixel_weight` 1 keeps the noise maps noise: at 1000 or 10000 the PSNR
rises (34.7, 43.3 dB against 32.8, shipped fashion model, 4 seeds, 500 steps) only because the noise
maps take over the image (its latent rendered with the model's own noise: 31.5, 24.4 dB against 33.1).
(2) Space "w+" optimises one w for all layers for the first quarter of the steps (`w_plus_after`), then
one w per layer: per layer from the start often stalled on targets far from the mean image (28.2 dB
against 32.8 in the same measurement). (3) PGGAN gets no w noise (28.6 against 24.6 dB with it, 3
seeds, 300 steps).

The model is never modified: the noise maps live in a copy of the synthesis network that shares
every parameter and other buffer with G (see `synthesis_with_noise`), so renders by other threads are
unaffected, and gradients are taken with torch.autograd.grad with respect to the latent and the noise
only, so G's own .grad fields are never touched.

PGGAN has no w space and no noise inputs: its one latent (ws [N, 1, z_dim]) is the pixel-normalised
z. Space "w" projects it on that sphere (ws = normalize_2nd_moment(v), v optimised), starting from the
best of `pggan_init_samples` seeded random latents by pixel error, since its mean latent is 0 (no
image). Space "w+" does not exist for it (num_ws 1) and is refused.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan.io.checkpoint import (D_NAME, CheckpointError, atomic_save_tensors, load_network, load_tensors,
                               resolve_model_folder)
from gan.models.layers import normalize_2nd_moment

from .directions import ProgressCallback
from .lpips import LPIPS, MIN_SIZE as LPIPS_MIN_SIZE, load_lpips
from .session import ExplorerError

SPACES = ("w", "w+")
MAX_STEPS = 100_000
PIXEL_SCALES = (1, 2, 4)           # average-pool factors of the multi-scale pixel loss
W_AVG_SEED = 123                   # as projector.py: np.random.RandomState(123).randn(w_avg_samples, z_dim)


@dataclass
class ProjectionResult:
    """ws [1, num_ws, w_dim] float32 (CPU); noise: noise_const buffer name ('b8.conv0.noise_const', as in
    G.synthesis.named_buffers()) -> [res, res] float32 (CPU), {} for PGGAN; losses: the loss at each step;
    psnr: dB of `image` against the target (both clamped to [-1, 1], peak-to-peak 2); image [1, C, H, W]:
    synthesize(G, ws, noise), the image of the final latent and noise maps."""
    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    losses: list[float]
    psnr: float
    image: torch.Tensor
    space: str
    steps: int
    seed: int
    seconds: float = 0.0
    pixel_losses: list[float] = field(default_factory=list)   # the multi-scale pixel term of each step
    lpips_losses: list[float] = field(default_factory=list)   # the LPIPS term of each step (with vgg16 only)
    terms: tuple[str, ...] = ("pixels",)                       # the loss's image terms, in words

    @property
    def loss_words(self) -> str:
        """'pixels + D features + LPIPS': what the projection matched, for the note a user reads."""
        return " + ".join(self.terms)


# ---- small pure functions ------------------------------------------------------------------

def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images in [-1, 1] (clamped first, peak-to-peak 2)."""
    mse = (a.detach().float().clamp(-1, 1) - b.detach().float().clamp(-1, 1)).square().mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)


def learning_rate(t: float, initial: float = 0.1, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """projector.py's schedule at t = step / steps: linear ramp-up, half-cosine ramp-down."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return initial * ramp * min(1.0, t / rampup)


def w_noise_scale(t: float, w_std: float, initial_factor: float = 0.05, ramp_length: float = 0.75) -> float:
    return w_std * initial_factor * max(0.0, 1.0 - t / ramp_length) ** 2


def pixel_loss(x: torch.Tensor, target: torch.Tensor, scales=PIXEL_SCALES) -> torch.Tensor:
    """Sum over `scales` of the mean squared error of x and target [N, C, H, W] average-pooled by each."""
    total = x.new_zeros(())
    for s in scales:
        if s > 1 and x.shape[-1] // s < 1:
            continue
        a, b = (F.avg_pool2d(x, s), F.avg_pool2d(target, s)) if s > 1 else (x, target)
        total = total + (a - b).square().mean()
    return total


def noise_regularizer(noise_maps) -> torch.Tensor:
    """projector.py's multi-scale regulariser: squared autocorrelation at a shift of one pixel, both ways,
    of each noise map [H, W] and of its 2x average-pooled versions down to 8x8."""
    reg = None
    for v in noise_maps:
        noise = v[None, None]
        while True:
            term = (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2 \
                + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            reg = term if reg is None else reg + term
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return torch.zeros(()) if reg is None else reg


# ---- the model, untouched ------------------------------------------------------------------

def noise_buffers(G) -> dict[str, torch.Tensor]:
    """The synthesis network's noise_const buffers by name ({} for PGGAN)."""
    if not isinstance(G.synthesis, nn.Module):
        return {}
    return {name: buf for name, buf in G.synthesis.named_buffers() if name.endswith("noise_const")}


def _shared_copy(module: nn.Module, replace: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """A copy of `module` that shares all its parameters and buffers with it, except the buffers named
    in `replace`, which are those tensors (not copies): swapping them never touches `module`."""
    replace = replace or {}
    memo = {id(t): t for t in (*module.parameters(), *module.buffers())}
    for name, buf in module.named_buffers():
        if name in replace:
            memo[id(buf)] = replace[name]
    return copy.deepcopy(module, memo)


def _check_noise(G, noise: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """noise, refused unless it holds exactly G's noise maps, each of its shape."""
    own = noise_buffers(G)
    if set(noise) != set(own):
        missing = sorted(set(own) - set(noise)) or sorted(set(noise) - set(own))
        raise ExplorerError(f"noise maps do not match this model: {missing[0]!r} differs; "
                            f"give every one of its {len(own)} noise_const maps")
    for name, buf in own.items():
        if tuple(noise[name].shape) != tuple(buf.shape):
            raise ExplorerError(f"noise map {name!r} is {list(noise[name].shape)}, the model's is {list(buf.shape)}")
    return noise


def synthesis_with_noise(G, noise: dict[str, torch.Tensor]):
    """G.synthesis, rendering `noise` as its const noise maps (PGGAN: G.synthesis itself)."""
    own = noise_buffers(G)
    if not own:
        return G.synthesis
    device = own[next(iter(own))].device
    return _shared_copy(G.synthesis, {k: v.to(device, torch.float32) for k, v in _check_noise(G, noise).items()})


@torch.no_grad()
def synthesize(G, ws: torch.Tensor, noise: dict[str, torch.Tensor] | None = None,
               return_stages: bool = False):
    """G.synthesis(ws, noise_mode='const') with `noise` (a ProjectionResult's) as the const noise maps;
    noise None or {}: the model's own. Thread-safe: the model is not modified."""
    synthesis = synthesis_with_noise(G, noise) if noise else G.synthesis
    device = next(G.parameters()).device
    return synthesis(ws.to(device), noise_mode="const", return_stages=return_stages)


def load_discriminator(model_folder) -> nn.Module | None:
    """The model folder's discriminator (D.safetensors) in eval mode without grads, or None when the
    folder has none (shipped models keep only G). A broken D file raises ExplorerError."""
    folder = resolve_model_folder(model_folder)
    if not (folder / D_NAME).is_file():
        return None
    try:
        D = load_network(folder, "D")
    except CheckpointError as e:
        raise ExplorerError(str(e)) from None
    return D.eval().requires_grad_(False)


class _DFeatures:
    """Block activations of a discriminator (a shared copy carrying forward hooks)."""

    def __init__(self, D: nn.Module, G):
        if D.img_resolution != G.img_resolution or D.img_channels != G.img_channels:
            raise ExplorerError(f"the discriminator takes {D.img_channels}x{D.img_resolution}px images, the "
                                f"generator makes {G.img_channels}x{G.img_resolution}px: give the model's own D")
        if getattr(D, "arch", None) != G.arch:
            raise ExplorerError(f"a {getattr(D, 'arch', type(D).__name__)} discriminator cannot judge a {G.arch} "
                                "generator: give the model's own D")
        if G.arch == "pggan" and D.depth != D.max_depth:
            raise ExplorerError(f"the PGGAN discriminator is at stage {D.depth} of {D.max_depth}: give a finished one")
        self.D = _shared_copy(D)
        names = [f"b{r}" for r in (D.resolutions[1:] if G.arch == "pggan" else D.block_resolutions)]
        self.feats: list[torch.Tensor] = []
        for name in names:
            getattr(self.D, name).register_forward_hook(lambda _m, _i, out: self.feats.append(out))

    def __call__(self, img: torch.Tensor) -> list[torch.Tensor]:
        self.feats = []
        self.D(img)
        return self.feats


def d_feature_loss(feats: list[torch.Tensor], target_feats: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of mean squared feature difference / mean square of the target's features."""
    return sum(((f - t).square().mean() / (t.square().mean() + 1e-8)) for f, t in zip(feats, target_feats))


@torch.no_grad()
def w_stats(G, samples: int = 10_000, batch: int = 5000) -> tuple[torch.Tensor, float]:
    """(w_avg [1, 1, w_dim], w_std) of `samples` untruncated w as projector.py estimates them. A conditional
    model's w are sampled over its classes (uniform, from the same RandomState)."""
    device = next(G.parameters()).device
    rnd = np.random.RandomState(W_AVG_SEED)
    z = rnd.randn(samples, G.z_dim)
    c_dim = getattr(G.mapping, "c_dim", 0)
    classes = rnd.randint(c_dim, size=samples) if c_dim else None
    ws = []
    for i in range(0, samples, batch):
        zb = torch.from_numpy(z[i:i + batch]).float().to(device)
        c = None if classes is None else F.one_hot(torch.from_numpy(classes[i:i + batch]), c_dim).float().to(device)
        ws.append(G.mapping.to_w(zb, c).double())
    w = torch.cat(ws)
    w_avg = w.mean(dim=0, keepdim=True)
    w_std = float(((w - w_avg).square().sum() / samples).sqrt())
    return w_avg.float().unsqueeze(1), w_std


# ---- projection ----------------------------------------------------------------------------

def _check_target(G, target) -> torch.Tensor:
    if not isinstance(target, torch.Tensor):
        raise ExplorerError(f"the target must be a [C, H, W] tensor in [-1, 1] (see explorer.targets), "
                            f"got {type(target).__name__}")
    want = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape) != want:
        raise ExplorerError(f"the target is {list(target.shape)}, this model needs {list(want)} "
                            "(load it with explorer.targets.load_target)")
    if not torch.isfinite(target).all():
        raise ExplorerError("the target has NaN or infinite values")
    return target.detach().clone().float()[None].clamp(-1, 1)


def _check_args(G, space, steps, seed, w_plus_after):
    if space not in SPACES:
        raise ExplorerError(f"unknown projection space {space!r}: use 'w' (one w for all layers) or 'w+' "
                            "(one per layer)")
    if space == "w+" and G.num_ws == 1:
        raise ExplorerError(f"{G.arch} has one latent for all layers (num_ws 1), so there is no w+: project in 'w'")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ExplorerError(f"steps must be an integer from 1 to {MAX_STEPS}, got {steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ExplorerError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(w_plus_after, bool) or not isinstance(w_plus_after, (int, float)) or not 0 <= w_plus_after < 1:
        raise ExplorerError(f"w_plus_after must be a fraction of the steps in [0, 1), got {w_plus_after!r}")


def _lpips_for(G, vgg16, lpips_weight, device) -> LPIPS:
    """vgg16 (a path or an LPIPS module) as an LPIPS module on `device`: the caller's module is never moved."""
    if isinstance(lpips_weight, bool) or not isinstance(lpips_weight, (int, float)) \
            or not math.isfinite(lpips_weight) or lpips_weight < 0:
        raise ExplorerError(f"lpips_weight must be a non-negative number, got {lpips_weight!r}")
    if isinstance(vgg16, (str, Path)):
        vgg16 = load_lpips(vgg16)
    if not isinstance(vgg16, LPIPS):
        raise ExplorerError(f"vgg16 must be the path of a VGG16 weights file or an explorer.lpips.LPIPS, "
                            f"got {type(vgg16).__name__}")
    if G.img_resolution < LPIPS_MIN_SIZE:
        raise ExplorerError(f"LPIPS needs images of at least {LPIPS_MIN_SIZE} px, this model makes "
                            f"{G.img_resolution} px: project without vgg16")
    return vgg16 if vgg16.shift.device == torch.device(device) else copy.deepcopy(vgg16).to(device)


@torch.no_grad()
def _pggan_start(G, target: torch.Tensor, samples: int, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """The best of `samples` random latents by pixel error, [1, 1, z_dim], and the spread w_std."""
    device = target.device
    z = torch.randn(samples, 1, G.z_dim, generator=gen).to(device)
    ws = normalize_2nd_moment(z, dim=2)
    errs = torch.cat([(G.synthesis(ws[i:i + 64]) - target).square().flatten(1).mean(1)
                      for i in range(0, samples, 64)])
    return ws[int(errs.argmin())][None].clone(), math.sqrt(G.z_dim)


def project(G, target: torch.Tensor, space: str = "w+", steps: int = 500, seed: int = 0, D: nn.Module | None = None,
            progress: ProgressCallback | None = None, *, d_weight: float = 0.1, pixel_weight: float = 1.0,
            pixel_scales=PIXEL_SCALES, optimize_noise: bool = True, w_plus_after: float = 0.25,
            initial_learning_rate: float = 0.1, initial_noise_factor: float | None = None,
            lr_rampdown_length: float = 0.25, lr_rampup_length: float = 0.05, noise_ramp_length: float = 0.75,
            regularize_noise_weight: float = 1e5, w_avg_samples: int = 10_000, pggan_init_samples: int = 256,
            vgg16=None, lpips_weight: float = 1.0) -> ProjectionResult:
    """Project `target` [C, H, W] in [-1, 1] into G's latent space (see the module docstring).

    D: the model's discriminator (load_discriminator), whose features join the loss with `d_weight`.
    initial_noise_factor: the w noise at the start, in units of w_std (None: 0.05 as projector.py for
    StyleGAN2, 0 for PGGAN, where any such noise costs about 4 dB). optimize_noise False keeps the model's
    own noise maps. w_plus_after: space "w+" optimises one w for
    all layers for this fraction of the steps, then one per layer (0: per layer from the start, as the
    usual W+ projectors). progress(fraction, text) is called about 100 times. vgg16: a VGG16 weights file
    (explorer.lpips.load_lpips) or an LPIPS module; LPIPS then joins the loss with `lpips_weight`, and
    each step's LPIPS is in the result's lpips_losses. Deterministic for a fixed seed on a given machine
    and thread count."""
    _check_args(G, space, steps, seed, w_plus_after)
    t0 = time.perf_counter()
    device = next(G.parameters()).device
    lpips = _lpips_for(G, vgg16, lpips_weight, device) if vgg16 is not None else None
    with torch.inference_mode(False), torch.enable_grad():
        target = _check_target(G, target).to(device)
        target_taps = [f.detach() for f in lpips.taps(target)] if lpips is not None else []
        gen = torch.Generator().manual_seed(int(seed))
        features = _DFeatures(D, G) if D is not None else None
        target_feats = [f.detach() for f in features(target)] if features is not None else []
        if initial_noise_factor is None:
            initial_noise_factor = 0.0 if G.arch == "pggan" else 0.05
        if G.arch == "pggan":
            w_opt, w_std = _pggan_start(G, target, pggan_init_samples, gen)
        else:
            w_opt, w_std = w_stats(G, w_avg_samples)
        # the step from which ws are optimised per layer (never for space "w")
        per_layer_from = steps if space == "w" else math.ceil(w_plus_after * steps)
        w_opt = w_opt.to(device).repeat(1, G.num_ws if per_layer_from == 0 else 1, 1).requires_grad_(True)
        w_adam = torch.optim.Adam([w_opt], betas=(0.9, 0.999))
        noise = {k: (torch.randn(v.shape, generator=gen).to(device) if optimize_noise else v.detach().clone())
                 for k, v in noise_buffers(G).items()}
        trained_noise = [n.requires_grad_(True) for n in noise.values()] if optimize_noise else []
        noise_adam = torch.optim.Adam(trained_noise, betas=(0.9, 0.999)) if trained_noise else None
        synthesis = synthesis_with_noise(G, noise) if noise else G.synthesis
        losses, pixel_losses, lpips_losses = [], [], []
        for step in range(steps):
            t = step / steps
            if 0 < step == per_layer_from:    # w+ from here on: one w per layer, with a fresh Adam state
                w_opt = w_opt.detach().repeat(1, G.num_ws, 1).requires_grad_(True)
                w_adam = torch.optim.Adam([w_opt], betas=(0.9, 0.999))
            optimizers = [w_adam] + ([noise_adam] if noise_adam is not None else [])
            for group in (g for opt in optimizers for g in opt.param_groups):
                group["lr"] = learning_rate(t, initial_learning_rate, lr_rampdown_length, lr_rampup_length)

            # the image of the noisy latent, and its loss
            scale = w_noise_scale(t, w_std, initial_noise_factor, noise_ramp_length)
            img = synthesis(_to_ws(G, w_opt + torch.randn(w_opt.shape, generator=gen).to(device) * scale),
                            noise_mode="const")
            pix = pixel_loss(img, target, pixel_scales)
            loss = pixel_weight * pix
            if features is not None:
                loss = loss + d_weight * d_feature_loss(features(img), target_feats)
            if lpips is not None:
                perceptual = lpips.distance(lpips.taps(img), target_taps).sum()
                loss = loss + lpips_weight * perceptual
                lpips_losses.append(float(perceptual.detach()))
            if trained_noise:
                loss = loss + regularize_noise_weight * noise_regularizer(trained_noise)

            # step; gradients of the latent and the noise only (G's .grad fields are never written)
            trained = [w_opt] + trained_noise
            for p, g in zip(trained, torch.autograd.grad(loss, trained)):
                p.grad = g
            for opt in optimizers:
                opt.step()
            with torch.no_grad():
                for n in trained_noise:
                    n -= n.mean()
                    n *= n.square().mean().rsqrt()
            losses.append(float(loss.detach()))
            pixel_losses.append(float(pix.detach()))
            if progress is not None and ((step + 1) % max(1, steps // 100) == 0 or step + 1 == steps):
                progress((step + 1) / steps, f"projection step {step + 1}/{steps}: loss {losses[-1]:.4g}")
        ws = _to_ws(G, w_opt.detach())
        noise = {k: v.detach().cpu().clone() for k, v in noise.items()}
        image = synthesize(G, ws, noise).cpu()
    return ProjectionResult(ws=ws.cpu(), noise=noise, losses=losses, psnr=psnr(image, target.cpu()), image=image,
                            space=space, steps=steps, seed=int(seed), seconds=time.perf_counter() - t0,
                            pixel_losses=pixel_losses, lpips_losses=lpips_losses,
                            terms=("pixels", *(["D features"] if features is not None else []),
                                   *(["LPIPS"] if lpips_losses else [])))


# ---- files ---------------------------------------------------------------------------------

def save_projection(result: ProjectionResult, path) -> Path:
    """ws and noise maps as safetensors ('ws', 'noise.<buffer name>'; space, steps, seed, psnr in the
    metadata), written atomically: what a session can point to instead of a seed."""
    tensors = {"ws": result.ws, **{f"noise.{k}": v for k, v in result.noise.items()}}
    meta = {"space": result.space, "steps": result.steps, "seed": result.seed, "psnr": f"{result.psnr:.4f}"}
    return atomic_save_tensors(path, tensors, meta)


def load_projection(path, G) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(ws [1, num_ws, w_dim], noise) from save_projection's file, checked against G (ExplorerError if not
    readable or not G's)."""
    from safetensors import SafetensorError
    try:
        tensors = load_tensors(Path(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ExplorerError(f"{Path(path).name} is not a readable projection file ({type(e).__name__})") from None
    ws = tensors.pop("ws", None)
    if ws is None or tuple(ws.shape) != (1, G.num_ws, G.w_dim):
        raise ExplorerError(f"{Path(path).name} holds no ws [1, {G.num_ws}, {G.w_dim}] for this model")
    noise = _check_noise(G, {k[len("noise."):]: v.float() for k, v in tensors.items() if k.startswith("noise.")})
    return ws.float(), noise


def _to_ws(G, w: torch.Tensor) -> torch.Tensor:
    """The optimised latent [1, 1 | num_ws, w_dim] -> ws [1, num_ws, w_dim]."""
    if G.arch == "pggan":
        return normalize_2nd_moment(w, dim=2)
    return w if w.shape[1] == G.num_ws else w.repeat(1, G.num_ws, 1)
