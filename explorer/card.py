"""Model cards: the pictures and the README.md that describe a trained model folder.

`write_card(model, ...)` renders, into the model folder,
- `samples.png`: a grid of fixed seeds (untruncated unless asked, so it shows what the model really makes),
- `direction-<C>.png`: a few seeds moved along PCA direction C from -3 to +3 sigma (one row per seed),
- `stages.png`: one seed at every resolution stage (through the stage snapshots when the run kept them),
caches the PCA directions there (so the app opens without computing them), and writes README.md from
config.json (dataset, licence, kimg, training time), the newest SWD / MS-SSIM lines of metrics.jsonl
and the text the author gives (the exact command, the hardware, the known weaknesses).
"""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from gan.commands import model_info
from gan.io.checkpoint import CONFIG_NAME, G_NAME
from gan.io.fileio import atomic_write_text
from gan.io.images import image_grid

from .engine import Engine
from .images import labelled_strip, save_png
from .session import DirectionSettings, ExplorerError

SIGMAS = (-3, -2, -1, 0, 1, 2, 3)


def sample_grid(engine: Engine, seeds: list[int], truncation_psi: float, tile: int, cols: int) -> Image.Image:
    """Seeds' images in a grid, `tile` px each, 2 px white gutters; row-major in seed order."""
    tiles = [engine.render(engine.default_state(seed=seed, truncation_psi=truncation_psi), size=tile,
                           resample="nearest").convert("RGB") for seed in seeds]
    return image_grid(tiles, cols=cols, gap=2)


def stack(images: list[Image.Image]) -> Image.Image:
    """Images one under the other on white (widths may differ; left-aligned)."""
    out = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    y = 0
    for image in images:
        out.paste(image, (0, y))
        y += image.height
    return out


def direction_strip(engine: Engine, component: int, seeds: list[int], truncation_psi: float, tile: int,
                    settings: DirectionSettings | None = None) -> Image.Image:
    """One row per seed: the image moved along `component` by -3 ... +3 sigma on every layer."""
    settings = settings or DirectionSettings()
    if component >= engine.num_components(settings):
        raise ExplorerError(f"unknown component {component}: this model has 0..{engine.num_components(settings) - 1}")
    return stack([engine.direction_preview(engine.default_state(seed=seed, truncation_psi=truncation_psi,
                                                                directions=settings), component, SIGMAS,
                                           size=tile, resample="nearest").convert("RGB") for seed in seeds])


def stages_picture(engine: Engine, seeds: list[int], truncation_psi: float, tile: int) -> tuple[Image.Image, str]:
    """One row per seed at every stage; (image, what it shows)."""
    rows, what = [], ""
    for seed in seeds:
        state = engine.default_state(seed=seed, truncation_psi=truncation_psi)
        shots = engine.stage_snapshots(state, size=tile)
        if shots:
            what = "the same seed through the generator kept at the end of each training stage"
        else:
            shots = engine.stage_previews(state, size=tile)
            what = "the final generator's image at each resolution stage (its intermediate toRGB outputs)"
        rows.append(labelled_strip([(s.image.convert("RGB"), s.label) for s in shots]))
    return stack(rows), what


def latest_metrics(folder: Path) -> dict:
    """Newest value of every metric in <model>/metrics.jsonl, with the line's settings."""
    found = {}
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return found
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        for name, value in (record.get("results") or {}).items():
            found[name] = {"value": value, "num": record.get("num"), "data": record.get("data")}
    return found


def _format_metric(name: str, entry: dict) -> str:
    value = entry["value"]  # metrics.jsonl results are flat: {"swd": 13.1, "swd_32": ..., "msssim": ...}
    shown = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
    return f"| {name} | {shown} | {entry.get('num')} images, data `{entry.get('data')}` |"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def write_card(model: str | Path, title: str, command: str, hardware: str, notes: str = "",
               seeds: list[int] | None = None, component: int = 0, strip_seeds: list[int] | None = None,
               truncation_psi: float = 1.0, strip_truncation_psi: float = 0.7, cache_dir=None) -> Path:
    """Render the card's pictures into the model folder and write its README.md; returns README's path."""
    folder = Path(model)
    engine = Engine(folder, cache_dir=cache_dir, show_bars=True)
    seeds = seeds if seeds is not None else list(range(48))
    strip_seeds = strip_seeds if strip_seeds is not None else [0, 1, 2, 3]
    tile = max(64, engine.img_resolution)
    directions = engine.directions(DirectionSettings())  # cached next to the model for the app
    save_png(sample_grid(engine, seeds, truncation_psi, tile, cols=12 if len(seeds) > 24 else 8),
             folder / "samples.png")
    strip_name = f"direction-{component}.png"
    save_png(direction_strip(engine, component, strip_seeds, strip_truncation_psi, tile), folder / strip_name)
    stages, stages_what = stages_picture(engine, strip_seeds[:2], strip_truncation_psi, tile)
    save_png(stages, folder / "stages.png")

    raw = json.loads((folder / CONFIG_NAME).read_text())
    training, dataset, mcfg = raw.get("training") or {}, raw.get("dataset") or {}, raw["model"]
    tcfg = training.get("config") or {}
    seconds = training.get("seconds")
    ratio = directions.explained_variance_ratio
    metric_lines = [_format_metric(k, v) for k, v in latest_metrics(folder).items()]
    params = model_info(folder)["params"]
    lines = [
        f"# {title}",
        "",
        f"A {mcfg['arch'].upper() if mcfg['arch'] == 'pggan' else 'StyleGAN2'} generator, "
        f"{mcfg['img_resolution']}x{mcfg['img_resolution']} "
        f"{'greyscale' if mcfg['img_channels'] == 1 else 'RGB'}, trained by this project's own trainer. "
        f"The folder holds the G EMA weights only (`{G_NAME}`), `{CONFIG_NAME}`, the cached PCA "
        "directions (`directions/`)" + (" and the generator of every training stage (`stages/`)"
                                        if (folder / "stages").is_dir() else "") + ".",
        "",
        "![samples](samples.png)",
        "",
        f"Seeds {seeds[0]}-{seeds[-1]}, truncation psi {truncation_psi:g}, noise const "
        f"(`python -m gan generate --model {folder.as_posix()} --seeds {seeds[0]}-{seeds[-1]} "
        f"--trunc {truncation_psi:g} --grid --out samples.png` gives the same images).",
        "",
        "## Data",
        "",
        f"- **{dataset.get('name', tcfg.get('data'))}**: {dataset.get('num_images', '?')} images"
        + (" (plus mirrored copies)" if dataset.get("xflip") else "") + f", from {dataset.get('source', '?')}.",
        f"- Licence: {dataset.get('licence', 'see the source')}.",
        "",
        "## Training",
        "",
        "```",
        command,
        "```",
        "",
        f"- Trained for {training.get('kimg', 0):.0f} kimg ({training.get('steps', '?')} steps, batch "
        f"{tcfg.get('batch', '?')})" + (f" in {_duration(seconds)} of wall time" if seconds else "")
        + f" on {hardware}.",
        f"- Network: channel_base {mcfg['channel_base']}, channel_max {mcfg['channel_max']}, z_dim {mcfg['z_dim']}"
        + (f", w_dim {mcfg['w_dim']}, {mcfg['mapping_layers']} mapping layers" if mcfg["arch"] == "stylegan2" else "")
        + (f"; {params['G']:,} generator parameters" if isinstance(params, dict) and "G" in params else "") + ".",
        "- Resume or extend: run the same command again (the trainer resumes exactly from its last snapshot; "
        "a larger `--kimg` trains further). `python -m gan pack --run <run> --out <folder>` made this folder.",
        "",
        "## Metrics",
        "",
    ]
    if metric_lines:
        lines += ["| metric | value | measured on |", "|---|---|---|", *metric_lines, "",
                  "SWD is x10^3 per Laplacian level (16 px up), lower is better; MS-SSIM is the mean over random "
                  "pairs of generated images (lower = more diverse), with the real data's value for reference. "
                  f"Re-measure: `python -m gan metrics --model {folder.as_posix()} --data "
                  f"{dataset.get('spec', tcfg.get('data'))} --metrics swd,msssim`.", ""]
    else:
        lines += ["Not measured yet: `python -m gan metrics --model <this folder> --data <dataset> "
                  "--metrics swd,msssim`.", ""]
    lines += [
        "## Latent directions",
        "",
        f"PCA of {directions.settings.samples:,} sampled "
        + ("w (GANSpace)" if directions.space == "w" else f"activations of `{directions.activation}`, regressed "
           "back to z (GANSpace's PGGAN method)")
        + ". The first five components explain "
        + ", ".join(f"{100 * r:.1f}%" for r in ratio[:5]) + " of the variance.",
        "",
        f"Component {component} from -3 to +3 sigma on all layers, seeds "
        f"{', '.join(map(str, strip_seeds))}, truncation psi {strip_truncation_psi:g}:",
        "",
        f"![direction {component}]({strip_name})",
        "",
        f"Same with `python -m explorer render --model {folder.as_posix()} --seed {strip_seeds[0]} "
        f"--trunc {strip_truncation_psi:g} --edit {component}:3 --out edit.png`.",
        "",
        "## Resolution stages",
        "",
        f"Seeds {', '.join(map(str, strip_seeds[:2]))}: {stages_what}.",
        "",
        "![stages](stages.png)",
        "",
    ]
    if notes.strip():
        lines += ["## Known weaknesses", "", notes.strip(), ""]
    readme = folder / "README.md"
    atomic_write_text(readme, "\n".join(lines))
    return readme
