"""Library functions behind `python -m gan new|info|generate` (usable from Python too)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from .io.checkpoint import CONFIG_NAME, D_NAME, G_NAME, CheckpointError, load_model, load_network, read_config, \
    resolve_model_folder, save_model
from .models.config import ModelConfig
from .io.images import save_image, save_image_grid
from .models.networks import build_discriminator, build_generator, count_params
from .seeds import z_from_seeds


def new_model(out: str | Path, cfg: ModelConfig, seed: int = 0, force: bool = False) -> Path:
    """A randomly initialised model folder (G and D), for tests and experiments."""
    out = Path(out)
    cfg.validate()
    if (out / CONFIG_NAME).exists() and not force:
        raise CheckpointError(f"{out} already holds a model: choose another --out (or pass --force to replace it)")
    torch.manual_seed(seed)
    G, D = build_generator(cfg), build_discriminator(cfg)
    return save_model(out, G, cfg, D=D, training={"kimg": 0, "note": f"random initialisation, seed {seed}"})


def model_info(path: str | Path) -> dict:
    """Architecture summary and parameter counts of a model folder (one JSON-able dict)."""
    folder = resolve_model_folder(path)
    cfg, raw = config = read_config(folder)
    G = load_network(folder, "G", config)
    if (folder / D_NAME).is_file():
        D = load_network(folder, "D", config)
    else:  # only the count is needed: build it without memory
        with torch.device("meta"):
            D = build_discriminator(cfg)
    return {
        "arch": cfg.arch,
        "img_resolution": cfg.img_resolution,
        "img_channels": cfg.img_channels,
        "z_dim": G.z_dim,
        "w_dim": G.w_dim,
        "c_dim": getattr(G, "c_dim", 0),
        "num_ws": G.num_ws,
        "stage_resolutions": list(G.stage_resolutions),
        "supports_style_mixing": G.supports_style_mixing,
        "params": {"G": count_params(G), "D": count_params(D), "mapping": count_params(G.mapping)},
        "has_D_weights": (folder / D_NAME).is_file(),
        "config": cfg.to_dict(),
        "training": raw.get("training", {}),
        "dataset": raw.get("dataset", {}),
        "source": raw.get("source"),
    }


def class_labels(G: torch.nn.Module, class_idx: int | None, n: int) -> torch.Tensor | None:
    """One-hot labels [n, c_dim] for a conditional generator, None for an unconditional one. As the official
    generate.py: a conditional model needs a class; a class given to an unconditional one is ignored (warned)."""
    c_dim = getattr(G, "c_dim", 0)
    if c_dim == 0:
        if class_idx is not None:
            warnings.warn(f"--class {class_idx} ignored: the model is unconditional", UserWarning, stacklevel=2)
        return None
    if class_idx is None:
        raise ValueError(f"the model is conditional ({c_dim} classes): choose one with --class 0..{c_dim - 1}")
    if not 0 <= class_idx < c_dim:
        raise ValueError(f"--class {class_idx} is out of range: the model has classes 0..{c_dim - 1}")
    c = torch.zeros(n, c_dim)
    c[:, class_idx] = 1
    return c


@torch.inference_mode()
def generate_images(G: torch.nn.Module, seeds: list[int], truncation_psi: float = 1.0,
                    truncation_cutoff: int | None = None, noise_mode: str = "const",
                    batch: int = 16, class_idx: int | None = None) -> torch.Tensor:
    """Images for seeds, float [N, C, H, W] in about [-1, 1]. Same seed, same image as the official tools.
    class_idx: the class of a conditional model (required there, ignored with a warning elsewhere)."""
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(seeds), batch):
        z = z_from_seeds(seeds[i:i + batch], G.z_dim).to(device)
        c = class_labels(G, class_idx, z.shape[0])
        label = {} if c is None else {"c": c.to(device)}  # PGGAN's mapping takes no label
        ws = G.mapping(z, **label, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        out.append(G.synthesis(ws, noise_mode=noise_mode).cpu())
    return torch.cat(out)


def generate(model: str | Path, seeds: list[int], out: str | Path, truncation_psi: float = 1.0,
             truncation_cutoff: int | None = None, noise_mode: str = "const", grid: bool = False,
             progress: bool = True, class_idx: int | None = None) -> list[Path]:
    """PNG per seed (`seed0042.png`, as the official tools name them) into a folder, or one grid PNG.
    model: a model folder or an NVIDIA network .pkl (imported on the fly); class_idx as generate_images."""
    out = Path(out)
    if grid:
        if out.suffix.lower() != ".png":
            raise ValueError(f"--grid writes one PNG: give an --out path ending in .png, not {out}")
        if not out.parent.exists():
            raise ValueError(f"output folder {out.parent} does not exist: create it first")
    elif out.suffix.lower() == ".png":
        raise ValueError(f"--out {out} looks like a file: give a folder, or add --grid for one grid image")
    G, _ = load_model(model)
    if class_labels(G, class_idx, 1) is None:  # checks the class before anything is written
        class_idx = None
    if grid:
        imgs = generate_images(G, seeds, truncation_psi, truncation_cutoff, noise_mode, class_idx=class_idx)
        return [save_image_grid(imgs, out)]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    from tqdm import tqdm
    for i in tqdm(range(0, len(seeds), 16), desc="generate", unit="batch", disable=not progress or len(seeds) <= 16):
        chunk = seeds[i:i + 16]
        imgs = generate_images(G, chunk, truncation_psi, truncation_cutoff, noise_mode, class_idx=class_idx)
        for seed, img in zip(chunk, imgs):
            written.append(save_image(img, out / f"seed{seed:04d}.png"))
    return written


def info_json(path: str | Path) -> str:
    return json.dumps(model_info(path), indent=2)


def _read_generator(src: Path) -> tuple:
    """(G, ModelConfig, config.json) of a model folder, validated as load_network does."""
    cfg, raw = config = read_config(src)
    return load_network(src, "G", config), cfg, raw


def pack_model(source: str | Path, out: str | Path, force: bool = False) -> Path:
    """A shareable model folder from a training run (or a model folder): config.json + G.safetensors,
    no discriminator, and for PGGAN the generator of every kept stage snapshot under out/stages/.

    `source` is a run folder (its final/ model is used) or a model folder. Everything is checked
    before anything is written, so a wrong source never leaves a half-written `out`.
    """
    source, out = Path(source), Path(out)
    if (source / "final" / CONFIG_NAME).is_file():
        model, stages_root = source / "final", source / "stages"
    elif (source / CONFIG_NAME).is_file() and (source / G_NAME).is_file():
        model, stages_root = source, source / "stages"
    elif (source / "snapshots").is_dir():
        raise CheckpointError(f"{source} is a training run that has not finished: let it reach --kimg (or re-run "
                              f"it with a smaller --kimg to end it now), then pack it")
    else:
        raise CheckpointError(f"{source} is neither a training run folder nor a model folder (no final/ and no "
                              f"config.json + G.safetensors)")
    if out.resolve() == model.resolve():
        raise CheckpointError(f"--out {out} is the source model itself: choose a new folder")
    if (out / CONFIG_NAME).exists() and not force:
        raise CheckpointError(f"{out} already holds a model: choose another --out (or pass --force to replace it)")
    stages = sorted(p for p in stages_root.iterdir() if (p / CONFIG_NAME).is_file()) if stages_root.is_dir() else []
    # Read (and so validate) every generator before writing anything; each is read once.
    targets = [out, *(out / "stages" / stage.name for stage in stages)]
    generators = [_read_generator(folder) for folder in [model, *stages]]
    for dst, (G, cfg, raw) in zip(targets, generators):  # the G EMA weights and the metadata, no D
        save_model(dst, G, cfg, training=raw.get("training"), dataset=raw.get("dataset"))
    return out
