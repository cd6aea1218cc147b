"""LPIPS (Zhang et al. 2018) on VGG16 features, from a weights file the user supplies: nothing is downloaded.

    lpips = load_lpips("vgg16-lpips.safetensors")          # VGG16 conv weights [+ LPIPS' lin weights]
    d = lpips(a, b)                                        # [N]; a, b [N, C, H, W] in [-1, 1]
    convert_weights("vgg16-397923af.pth", "vgg.pth", "vgg16-lpips.safetensors")   # from the usual pickles

The file (safetensors) holds VGG16's 13 convolutions named as torchvision's `vgg16().state_dict()`:
`features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.weight` [out, in, 3, 3] and `.bias` [out] (a ReLU after
each, a 2x2 max-pool after convs 2, 4, 7 and 10; nothing after relu5_3 is used, and `classifier.*`
tensors, if present, are ignored). Optionally LPIPS' learned weights, in richzhang/PerceptualSimilarity's
layout: `lin0.model.1.weight` .. `lin4.model.1.weight` [1, C, 1, 1], C = 64, 128, 256, 512, 512,
non-negative. With them the distance is LPIPS ("lin", `learned` True); without them every channel weighs
1, the paper's unlearned baseline (`learned` False), on another scale: `description` says which.

The distance (the paper's eq. 1, as lpips.LPIPS(net='vgg') computes it): greyscale is repeated to 3
channels; images larger than 256 px are area-downsampled so that the larger side is 256 (as NVIDIA's
projector.py does before its VGG16); the ScalingLayer (x - shift) / scale, shift (-.030, -.088, -.188),
scale (.458, .448, .450); at each tap (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) the features are
unit-normalised along channels (f / (|f| + 1e-10), the reference's eps), their squared difference is
weighted per channel, summed over channels and averaged over space; the taps are summed -> [N]. At the
square root the gradient is taken as 0 where a position's features are all zero (the reference's is NaN
there; the value is the same).

Small images stay defined: each pool halves the maps, so at 32 px the taps are 32, 16, 8, 4 and 2 px
square and relu5_3 averages 2x2 positions; at 16 px it is 1x1. Below 16 px relu5_3 would be empty, so
such images are refused (ValueError). A 32 px image is far below the 224 px VGG16 was trained on: its
deep taps see the whole image in a few positions, so LPIPS there is a coarse, global comparison.

Loading refuses, with one line (ExplorerError), a missing file, a file that is not safetensors (a pickle
is pointed to convert_weights), a header declaring more than 16 MiB, missing, unexpected or wrongly
shaped tensors (named, with the shape found and wanted), non-float dtypes, non-finite values and negative
lin weights. Shapes and dtypes are checked from the header before any tensor data is read.
"""
from __future__ import annotations

import struct
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan.importers.errors import PickleImportError
from gan.importers.torch_save import read_state_dict
from gan.io.checkpoint import atomic_save_tensors

from .session import ExplorerError

# torchvision's vgg16().features indices of the 13 convolutions, and (in, out) channels of each
CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256), 14: (256, 256),
         17: (256, 512), 19: (512, 512), 21: (512, 512), 24: (512, 512), 26: (512, 512), 28: (512, 512)}
POOLS = (4, 9, 16, 23)                     # the 2x2 max-pools between the taps
TAPS = {3: "relu1_2", 8: "relu2_2", 15: "relu3_3", 22: "relu4_3", 29: "relu5_3"}   # index -> name
TAP_CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)           # lpips.ScalingLayer
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10                                # lpips.normalize_tensor
MAX_SIZE = 256                             # larger images are area-downsampled (projector.py)
MIN_SIZE = 16                              # 4 pools: relu5_3 is 1x1 here, empty below
MAX_HEADER_BYTES = 16 << 20                # a VGG16 header is about 3 kB
FLOAT_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


def vgg_shapes() -> dict[str, tuple[int, ...]]:
    """The VGG16 tensor names of the file and their shapes."""
    out = {}
    for i, (c_in, c_out) in CONVS.items():
        out[f"features.{i}.weight"] = (c_out, c_in, 3, 3)
        out[f"features.{i}.bias"] = (c_out,)
    return out


def lin_shapes() -> dict[str, tuple[int, ...]]:
    """The LPIPS lin weight names (optional in the file) and their shapes."""
    return {f"lin{k}.model.1.weight": (1, c, 1, 1) for k, c in enumerate(TAP_CHANNELS)}


def _vgg16_features() -> nn.Sequential:
    """torchvision's vgg16().features up to relu5_3 (index 29), with its indices."""
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in CONVS.items():
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
        if i + 2 in POOLS:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def _unit(f: torch.Tensor) -> torch.Tensor:
    """f [N, C, H, W] / (its norm along C + EPS); the norm's gradient is 0 where f is all zero."""
    sq = f.square().sum(dim=1, keepdim=True)
    live = sq > 0
    norm = torch.where(live, torch.where(live, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq))
    return f / (norm + EPS)


class LPIPS(nn.Module):
    """The LPIPS distance on VGG16 features (module docstring). Built by load_lpips; eval mode, no grads on
    its weights. learned: LPIPS' lin weights (True) or every channel weighing 1 (False)."""

    def __init__(self, vgg: dict[str, torch.Tensor], lin: dict[str, torch.Tensor] | None = None, source: str = ""):
        """vgg: the file's features.* tensors; lin: its lin*.model.1.weight tensors, or None (weights 1)."""
        super().__init__()
        with torch.device("meta"):         # no random init of 14.7M weights that are replaced at once
            self.features = _vgg16_features()
        self.features.load_state_dict({k.removeprefix("features."): v.detach().float().contiguous().clone()
                                       for k, v in vgg.items()}, strict=True, assign=True)
        self.learned = lin is not None
        for k, (name, shape) in enumerate(lin_shapes().items()):
            weight = lin[name].float().reshape(shape[1]) if lin is not None else torch.ones(shape[1])
            self.register_buffer(f"lin{k}", weight.clone())
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        kind = "LPIPS (VGG16, learned lin weights)" if self.learned else \
            "VGG16 features, every channel weighing 1 (the LPIPS paper's unlearned baseline)"
        self.description = f"{kind}{f' from {source}' if source else ''}"
        self.eval().requires_grad_(False)

    def channel_weights(self) -> list[torch.Tensor]:
        """The per-channel weights of each tap, [C] each."""
        return [getattr(self, f"lin{k}") for k in range(len(TAP_CHANNELS))]

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, 1 | 3, H, W] in [-1, 1] -> the VGG input [N, 3, h, w]: greyscale repeated, larger than 256
        px area-downsampled, the ScalingLayer applied."""
        if x.ndim != 4 or x.shape[1] not in (1, 3) or not x.is_floating_point():
            raise ValueError(f"LPIPS takes float images [N, 1 | 3, H, W], got {x.dtype} {list(x.shape)}")
        h, w = x.shape[-2:]
        size = (h, w) if max(h, w) <= MAX_SIZE else (round(h * MAX_SIZE / max(h, w)), round(w * MAX_SIZE / max(h, w)))
        if min(size) < MIN_SIZE:
            raise ValueError(f"LPIPS needs images of at least {MIN_SIZE} px (four 2x2 pools), got {list(x.shape)}"
                             + (f" (downsampled to {list(size)})" if size != (h, w) else ""))
        x = x.to(self.shift.dtype)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="area")
        return (x - self.shift) / self.scale

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The unit-normalised features [N, C, h, w] at the five taps of images x [N, C, H, W] in [-1, 1]
        (what `distance` compares: compute a fixed image's once)."""
        out, h = [], self.prepare(x)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in TAPS:
                out.append(_unit(h))
        return out

    def distance(self, taps_a: list[torch.Tensor], taps_b: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS [N] of two images' taps (batch sizes equal, or one of them 1)."""
        total = None
        for fa, fb, weight in zip(taps_a, taps_b, self.channel_weights()):
            d = ((fa - fb).square() * weight.view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2))
            total = d if total is None else total + d
        return total

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """LPIPS [N] of images a, b [N, C, H, W] in [-1, 1]."""
        if a.shape[-2:] != b.shape[-2:]:
            raise ValueError(f"LPIPS compares images of one size, got {list(a.shape)} and {list(b.shape)}")
        return self.distance(self.taps(a), self.taps(b))

    def extra_repr(self) -> str:
        return self.description


# ---- loading ------------------------------------------------------------------------------------

def _check_shapes(name: str, found: dict, wanted: dict[str, tuple[int, ...]], what: str) -> None:
    """Refuse a missing or wrongly shaped tensor of `wanted`, or a non-float one; found: name -> (shape, dtype)."""
    for key, want in wanted.items():
        if key not in found:
            raise ExplorerError(f"{name}: tensor {key!r} is missing ({what})")
        shape, dtype = found[key]
        if tuple(shape) != want:
            raise ExplorerError(f"{name}: tensor {key!r} is {list(shape)}, want {list(want)}")
        if dtype not in FLOAT_DTYPES:
            raise ExplorerError(f"{name}: tensor {key!r} is {dtype}, want a float type (F32, F16, BF16, F64)")


VGG_WHAT = "VGG16's conv weights named as torchvision's vgg16().state_dict()"
LIN_WHAT = "LPIPS' lin weights are all five or none, named as in lpips' weights/v0.1/vgg.pth"


def _check_file(name: str, found: dict[str, tuple[tuple[int, ...], str]]) -> bool:
    """Refuse what the file must not hold (module docstring), from (shape, dtype) by tensor name. Returns
    whether the lin weights are there."""
    vgg, lin = vgg_shapes(), lin_shapes()
    _check_shapes(name, found, vgg, VGG_WHAT)
    has_lin = any(k in found for k in lin)
    if has_lin:
        _check_shapes(name, found, lin, LIN_WHAT)
    extra = sorted(k for k in found if k not in vgg and k not in lin and not k.startswith("classifier."))
    if extra:
        raise ExplorerError(f"{name}: unexpected tensor {extra[0]!r} (not one of VGG16's conv layers or "
                            "LPIPS' lin layers: is this VGG16?)")
    return has_lin


def _check_values(name: str, tensors: dict[str, torch.Tensor]) -> None:
    for key, t in tensors.items():
        if not torch.isfinite(t).all():
            raise ExplorerError(f"{name}: tensor {key!r} has NaN or infinite values")
        if key in lin_shapes() and (t < 0).any():
            raise ExplorerError(f"{name}: tensor {key!r} has negative values (LPIPS' lin weights are non-negative)")


def _check_header(path: Path) -> None:
    """Refuse what is not safetensors (a pickle pointed to convert_weights) and headers over 16 MiB."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        n = struct.unpack("<Q", head[:8])[0]
        if n > MAX_HEADER_BYTES or n + 8 > size:
            raise ExplorerError(f"{path.name}: not a safetensors file we read (its header claims {n} bytes, "
                                f"the file has {size}; at most {MAX_HEADER_BYTES})")
        return
    if head[:2] == b"PK" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        raise ExplorerError(f"{path.name}: a torch.save / pickle file, not safetensors: convert it with "
                            "explorer.lpips.convert_weights (read as data, never run)")
    raise ExplorerError(f"{path.name}: not a safetensors file (no safetensors header)")


def load_lpips(path) -> LPIPS:
    """The LPIPS module of a weights file (module docstring: layout and refusals, all ExplorerError)."""
    from safetensors import SafetensorError, safe_open
    path = Path(path)
    if not path.is_file():
        raise ExplorerError(f"{path}: no such file (LPIPS needs VGG16 weights as a safetensors file; "
                            "make one from torchvision's vgg16-397923af.pth with python -m explorer lpips-weights)")
    _check_header(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            found = {k: (tuple(fh.get_slice(k).get_shape()), fh.get_slice(k).get_dtype()) for k in fh.keys()}
            has_lin = _check_file(path.name, found)
            wanted = [*vgg_shapes(), *(lin_shapes() if has_lin else {})]
            tensors = {k: fh.get_tensor(k).float() for k in wanted}
    except (SafetensorError, OSError) as e:
        raise ExplorerError(f"{path.name}: not a readable safetensors file ({' '.join(str(e).split())[:160]})") \
            from None
    _check_values(path.name, tensors)
    vgg = {k: v for k, v in tensors.items() if k.startswith("features.")}
    lin = {k: v for k, v in tensors.items() if k.startswith("lin")} if has_lin else None
    return LPIPS(vgg, lin, source=path.name)


# ---- converting the usual pickles -----------------------------------------------------------------

def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        return read_state_dict(path)
    except PickleImportError as e:      # UnsafePickleError included: one line naming what was refused
        raise ExplorerError(str(e)) from None


def convert_weights(vgg_path, lin_path=None, out_path="vgg16-lpips.safetensors") -> Path:
    """One safetensors file for load_lpips, written atomically, from torchvision's VGG16 state dict
    (vgg16-397923af.pth) and optionally lpips' weights/v0.1/vgg.pth (lin0.model.1.weight ...). Both are
    torch.save pickles, read only as data (gan.importers.torch_save): a file asking to run code is refused.
    Tensors other than those needed (VGG16's classifier) are left out. Raises ExplorerError (one line)."""
    vgg_path, out_path = Path(vgg_path), Path(out_path)
    vgg_all = _read_pickle(vgg_path)
    _check_shapes(vgg_path.name, _described(vgg_all), vgg_shapes(), VGG_WHAT)
    tensors = {k: vgg_all[k] for k in vgg_shapes()}
    meta = {"format": "lpips-vgg16", "lin": "none", "vgg16": vgg_path.name}
    if lin_path is not None:
        lin_path = Path(lin_path)
        lin_all = _read_pickle(lin_path)
        _check_shapes(lin_path.name, _described(lin_all), lin_shapes(), LIN_WHAT)
        tensors.update({k: lin_all[k] for k in lin_shapes()})
        meta.update(lin="learned", lin_weights=lin_path.name)
    tensors = {k: v.float().contiguous() for k, v in tensors.items()}
    _check_values(vgg_path.name if lin_path is None else f"{vgg_path.name} / {lin_path.name}", tensors)
    return atomic_save_tensors(out_path, tensors, meta)


def _described(tensors: dict[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], str]]:
    names = {v: k for k, v in FLOAT_DTYPES.items()}
    return {k: (tuple(v.shape), names.get(v.dtype, str(v.dtype).replace("torch.", ""))) for k, v in tensors.items()}
