"""Model folders: `config.json` + safetensors. Loading never runs code; writes are atomic.

A model folder holds:
- `config.json`: {"format_version", "arch", "model": ModelConfig, "training": {...}, "dataset": {...}}, and
  for a model imported from a network pickle a "source" section (file name, sha256, format, original kwargs)
- `G.safetensors`: generator tensors (a trained model ships its G EMA weights here)
- `D.safetensors` (optional): discriminator tensors

Every file is written to a temporary name in the same folder and renamed into place, so a crash
never leaves a half-written file under the real name. `config.json` is written last: its
presence marks a complete folder. Before any network is built, the config is validated and the
tensor names and shapes in each safetensors header are compared with what the config implies;
a mismatch is refused with one line naming the file and the first mismatching tensor.
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .fileio import atomic_write, atomic_write_json
from ..models.config import FORMAT_VERSION, ConfigError, ModelConfig
from ..models.networks import build_discriminator, build_generator

CONFIG_NAME = "config.json"
G_NAME = "G.safetensors"
D_NAME = "D.safetensors"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin")
NETWORK_PICKLE_SUFFIX = ".pkl"  # NVIDIA's network pickles: imported safely (gan.importers), never unpickled as code


class CheckpointError(ValueError):
    """A model folder or file that cannot be used (one-line message naming the file)."""


# ---- writing -------------------------------------------------------------------------------------

def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> Path:
    """safetensors file from a name -> tensor dict (tensors made contiguous CPU copies)."""
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    return atomic_write(path, lambda tmp: save_file(clean, tmp, metadata=meta))


def module_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers (the state dict) of a module."""
    return dict(module.state_dict())


def save_model(folder: str | Path, G: nn.Module, cfg: ModelConfig, D: nn.Module | None = None,
               training: dict | None = None, dataset: dict | None = None, source: dict | None = None) -> Path:
    """Write a complete model folder. Existing files are replaced atomically, one by one. source: where an
    imported model came from (gan.importers), kept as config.json's "source" section."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # One id per save, in every file: a crash between the tensor files and config.json (or files mixed
    # from two models) then shows up as a mismatch at load instead of a silently mixed model.
    save_id = secrets.token_hex(8)
    for name, net, which in ((G_NAME, G, "G"), (D_NAME, D, "D")):
        if net is not None:
            atomic_save_tensors(folder / name, module_tensors(net),
                                {"format_version": FORMAT_VERSION, "network": which, "save_id": save_id})
    config = {
        "format_version": FORMAT_VERSION,
        "save_id": save_id,
        "arch": cfg.arch,
        "model": cfg.to_dict(),
        "training": training or {},
        "dataset": dataset or {},
    }
    if source is not None:
        config["source"] = source
    atomic_write_json(folder / CONFIG_NAME, config)
    return folder


# ---- loading -------------------------------------------------------------------------------------

def refuse_pickle(path: Path) -> None:
    """Pickles other than NVIDIA's .pkl network files (torch.save checkpoints .pt / .ckpt / .bin ...)."""
    raise CheckpointError(
        f"{path}: refusing to open a pickle ({path.suffix}) because unpickling can run arbitrary code; "
        f"give a model folder (config.json + {G_NAME}) instead")


def resolve_model_folder(path: str | Path, progress=True) -> Path:
    """Accept the folder, or a file inside it. An NVIDIA network pickle (.pkl: stylegan2-ada-pytorch,
    stylegan3 --cfg=stylegan2, TensorFlow StyleGAN2) is imported safely into the user cache, keyed by its
    sha256 (gan.importers.cached_import: reused once complete), and that folder is returned. Other pickles
    are refused. progress: True = a bar on stderr for large pickles, or progress(fraction, text)."""
    path = Path(path)
    if path.suffix.lower() == NETWORK_PICKLE_SUFFIX:
        from ..importers import cached_import  # the importer imports this module
        return cached_import(path, progress=progress)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        refuse_pickle(path)
    if path.is_file():
        path = path.parent
    if not path.exists():
        raise CheckpointError(f"{path}: no such model folder (create one with `python -m gan new` or `train`)")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a model folder (expected a folder with {CONFIG_NAME} and {G_NAME})")
    if not (path / CONFIG_NAME).is_file():
        pickles = sorted(p for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        networks = [p for p in pickles if p.suffix.lower() == NETWORK_PICKLE_SUFFIX]
        if networks:
            raise CheckpointError(f"{path}: no {CONFIG_NAME} here, but network pickles: give one of them, e.g. "
                                  f"{networks[-1]} (imported safely), or import it with `python -m gan import`")
        if pickles:
            refuse_pickle(pickles[0])
        raise CheckpointError(f"{path}: no {CONFIG_NAME} here; is this a model folder? "
                              "(a training run keeps its final model in <run>/final)")
    return path


def read_config(folder: str | Path) -> tuple[ModelConfig, dict]:
    """Parse and validate config.json. Returns (ModelConfig, the whole JSON object)."""
    folder = resolve_model_folder(folder)
    path = folder / CONFIG_NAME
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable JSON ({e})") from None
    if not isinstance(raw, dict) or "model" not in raw:
        raise CheckpointError(f"{path}: missing the 'model' section; not a model config")
    version = raw.get("format_version")
    if version is None:
        raise CheckpointError(f"{path}: no format_version, so not a model config written by this tool; "
                              "re-create the folder with `python -m gan new`, `train` or `pack`")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version!r} is not supported (this tool reads "
                              f"up to {FORMAT_VERSION}); upgrade the tool")
    try:
        cfg = ModelConfig.from_dict(raw["model"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None
    if raw.get("arch", cfg.arch) != cfg.arch:
        raise CheckpointError(f"{path}: 'arch' says {raw['arch']!r} but the model section says {cfg.arch!r}")
    return cfg, raw


def expected_shapes(module_builder, cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes a config implies, computed on the meta device (no memory, no init)."""
    with torch.device("meta"):
        module = module_builder(cfg)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header, without reading the data."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def check_shapes(path: Path, expected: dict[str, tuple[int, ...]], cfg_path: Path) -> None:
    found = file_shapes(path)
    for name, shape in expected.items():
        if name not in found:
            raise CheckpointError(f"{path} does not match {cfg_path}: tensor {name!r} {list(shape)} is missing")
        if found[name] != shape:
            raise CheckpointError(f"{path} does not match {cfg_path}: tensor {name!r} has shape "
                                  f"{list(found[name])}, the config implies {list(shape)}")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise CheckpointError(f"{path} does not match {cfg_path}: unexpected tensor {extra[0]!r}")


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}


def check_same_save(path: Path, raw: dict, cfg_path: Path) -> None:
    """Refuse a tensor file written by another save than config.json (folders from before save ids
    carry none and are not checked)."""
    want = raw.get("save_id")
    if want is None:
        return
    with safe_open(str(path), framework="pt") as fh:
        found = (fh.metadata() or {}).get("save_id")
    if found is not None and found != want:
        raise CheckpointError(f"{path} and {cfg_path} come from different saves (an interrupted write, or files "
                              "mixed from two models): save the model again, or restore both files together")


_NETWORKS = {"G": (G_NAME, build_generator), "D": (D_NAME, build_discriminator)}


def load_network(folder: str | Path, which: str = "G", config: tuple[ModelConfig, dict] | None = None) -> nn.Module:
    """Validate then build and fill one network ('G' or 'D') of a model folder. config: what
    read_config(folder) returned, when the caller has it already."""
    if which not in _NETWORKS:
        raise ValueError(f"which must be 'G' or 'D', got {which!r}")
    folder = resolve_model_folder(folder)
    cfg, raw = config or read_config(folder)
    name, builder = _NETWORKS[which]
    path = folder / name
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the model folder has no {which} weights")
    check_shapes(path, expected_shapes(builder, cfg), folder / CONFIG_NAME)
    check_same_save(path, raw, folder / CONFIG_NAME)
    net = builder(cfg)
    tensors = load_tensors(path)
    net.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True)
    return net


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelConfig]:
    """Load a model folder's generator for inference: (G in eval mode, no grads, ModelConfig)."""
    folder = resolve_model_folder(path)
    config = read_config(folder)
    G = load_network(folder, "G", config)
    cfg = config[0]
    G.eval().requires_grad_(False).to(device)
    return G, cfg
