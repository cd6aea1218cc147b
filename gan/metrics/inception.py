"""Inception-v3 pool3 features (2048-d) for FID, KID and precision/recall, and its class
probabilities for the Inception Score.

Loaded only from a file the user gives with `--inception PATH`; nothing is ever downloaded.
Supported: the TorchScript file that NVIDIA's StyleGAN2-ADA metrics use,
`pt_inception-2015-12-05-6726825d.pt` (the 2015 TensorFlow Inception graph that FID and IS were
defined with, exported to TorchScript). It takes uint8 NCHW RGB images of any size and resizes
them to 299x299 itself. Its forward is
`forward(img, return_features=False, use_fp16=False, no_output_bias=False)`: with
`return_features=True` it returns the pool3 features [N, 2048]; otherwise the softmax over its
1008 classes [N, 1008]. For IS we call it as StyleGAN2-ADA does, `no_output_bias=True` (the
original TensorFlow IS code left the output layer's bias out). Using the same file keeps FID/KID/IS
numbers comparable with published ones.

Not supported: torchvision Inception-v3 state dicts (their weights differ from the 2015 graph,
so their FIDs would not be comparable anyway); they are refused with a one-line message.

TorchScript is loaded with `torch.jit.load`, which runs the file's TorchScript code in the
TorchScript interpreter (not arbitrary Python): give it a file from a source you trust.
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pt"
INCEPTION_HINT = (f"NVIDIA's TorchScript Inception file {INCEPTION_FILE} "
                  "(the one StyleGAN2-ADA's metrics use; nothing is downloaded)")


class InceptionError(ValueError):
    """The Inception feature extractor cannot be loaded (one-line message saying what to pass)."""


def archive_kind(path: Path) -> str:
    """'torchscript', 'state_dict' (a torch.save zip), or 'unknown', from the zip's file names."""
    if not zipfile.is_zipfile(path):
        return "unknown"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "state_dict"
    return "unknown"


class InceptionFeatures:
    """Callable: uint8 images [N, C, H, W] (C = 1 or 3, 0..255) -> float64 features [N, 2048];
    `probabilities(images)` -> float64 class probabilities [N, 1008] (rows sum to 1)."""

    def __init__(self, module: torch.nn.Module, path: str | Path = "", device: str | torch.device = "cpu"):
        self.module = module.eval().to(device)
        self.path = str(path)
        self.device = torch.device(device)

    def _rgb(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3) or images.dtype != torch.uint8:
            raise ValueError(f"Inception features need uint8 images [N, 1 or 3, H, W], got "
                             f"{images.dtype} {list(images.shape)}")
        if images.shape[1] == 1:  # greyscale models: replicate to RGB, as the official code does
            images = images.repeat(1, 3, 1, 1)
        return images.to(self.device)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        feats = self.module(self._rgb(images), return_features=True)
        if feats.ndim != 2 or len(feats) != len(images):
            raise InceptionError(f"{self.path}: returned features of shape {list(feats.shape)}, expected "
                                 f"[{len(images)}, 2048]; --inception needs {INCEPTION_HINT}")
        return feats.to(torch.float64).cpu().numpy()

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor) -> np.ndarray:
        """Softmax class probabilities of uint8 images [N, C, H, W]: float64 [N, classes]."""
        # Checked up front: a TorchScript file without this argument fails deep inside its code.
        schema = getattr(getattr(self.module, "forward", None), "schema", None)
        if schema is not None and "no_output_bias" not in [a.name for a in schema.arguments]:
            raise InceptionError(f"{self.path}: its forward() has no no_output_bias argument, so it is not "
                                 f"the file the Inception Score is defined with; --inception needs {INCEPTION_HINT}")
        probs = self.module(self._rgb(images), no_output_bias=True).to(torch.float64)
        if probs.ndim != 2 or len(probs) != len(images):
            raise InceptionError(f"{self.path}: returned class probabilities of shape {list(probs.shape)}, "
                                 f"expected [{len(images)}, 1008]; --inception needs {INCEPTION_HINT}")
        # Logits instead of a softmax would make IS meaningless without any other sign of trouble.
        if (probs < 0).any() or not torch.allclose(probs.sum(dim=1), torch.ones(len(probs), dtype=probs.dtype),
                                                   atol=1e-3):
            raise InceptionError(f"{self.path}: its outputs are not probabilities (negative, or rows not "
                                 f"summing to 1); --inception needs {INCEPTION_HINT}")
        return probs.cpu().numpy()

    def identity(self) -> str:
        """A short identity of the weights file for cache keys: name and size."""
        p = Path(self.path)
        return f"{p.name}:{p.stat().st_size}" if p.is_file() else p.name


def load_inception(path: str | Path | None, device: str | torch.device = "cpu") -> InceptionFeatures:
    """The feature extractor from a user-supplied file; InceptionError (one line) when it cannot be used."""
    if path is None or str(path).strip() == "":
        raise InceptionError(f"FID, KID, IS and precision/recall need Inception-v3 weights: "
                             f"pass --inception PATH to {INCEPTION_HINT}")
    p = Path(path).expanduser()
    if not p.is_file():
        raise InceptionError(f"--inception {p}: no such file; it must be {INCEPTION_HINT}")
    kind = archive_kind(p)
    if kind == "state_dict":
        raise InceptionError(f"--inception {p} is a plain state dict (e.g. torchvision's); only TorchScript is "
                             f"supported: give {INCEPTION_HINT}")
    if kind != "torchscript":
        raise InceptionError(f"--inception {p} is not a TorchScript archive: give {INCEPTION_HINT}")
    try:
        with warnings.catch_warnings():  # torch marks torch.jit deprecated; it is still how this file loads
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(p), map_location="cpu")
    except (RuntimeError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InceptionError(f"--inception {p} could not be loaded ({reason}): give {INCEPTION_HINT}") from None
    return InceptionFeatures(module, p, device)
