"""What the explorer shows of the resolution stages (mixed into Engine): the generator's own image
at every stage of one forward pass, and a PGGAN run's stage snapshots (the models it trained at each
resolution on the way)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from gan.io.checkpoint import CONFIG_NAME, CheckpointError, load_model
from gan.io.images import to_uint8, uint8_to_pil

from .checks import check_size
from .images import labelled_strip
from .incremental import BlockCache
from .session import ExplorerError, ExplorerState

log = logging.getLogger(__name__)

STAGE_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class StageImage:
    """One resolution stage: `image` (PIL, upscaled for display) of a `resolution` px stage."""
    resolution: int
    label: str
    image: Image.Image


def _stage_order(folder: Path):
    """Stage folders are named by resolution ("004x004" ... "1024x1024"): sort by the number, not the
    text, so that 1024 comes after 512."""
    head = folder.name.split("x", 1)[0]
    return (0, int(head), folder.name) if head.isdigit() else (1, 0, folder.name)


def check_resample(resample: str, what: str) -> None:
    if resample not in STAGE_RESAMPLE:
        raise ExplorerError(f"{what} resample with nearest or bilinear, not {resample!r}")


def stage_image(img: torch.Tensor, size: int, resample: str, res: int | None = None) -> StageImage:
    """A stage's image [1, C, r, r] in about [-1, 1] as a StageImage upscaled to `size` px, labelled 'rxr'
    (res: the stage's resolution, default the image's own)."""
    res = res or img.shape[-1]
    pil = uint8_to_pil(to_uint8(img.cpu())[0]).resize((size, size), STAGE_RESAMPLE[resample])
    return StageImage(res, f"{res}x{res}", pil)


class Stages:
    """Mixed into Engine (which holds the model, its caches and their lock)."""

    def stage_previews(self, state: ExplorerState, size: int | None = None,
                       resample: str = "nearest") -> list[StageImage]:
        """The image at every resolution stage of the generator (StyleGAN2: the skip branch's running
        RGB after each block; PGGAN: each depth's toRGB), each upscaled to `size` px (default: the
        model's resolution) with 'nearest' or 'bilinear', labelled 'RxR'."""
        check_size(size)
        check_resample(resample, "stage previews")
        size = size or self.img_resolution
        image, stages = self.render_ws(self.ws(state), state.noise_mode, noise_seed=state.seed, return_stages=True,
                                       synthesis=self.synthesis_for(state))
        self._base(state, image)    # the same forward pass gives the image: render(state) need not run it again
        return [stage_image(img, size, resample, res) for res, img in zip(self.stage_resolutions, stages)]

    @torch.inference_mode()
    def early_preview(self, state: ExplorerState, size: int | None = None,
                      resample: str = "nearest") -> StageImage | None:
        """A lower stage of the state's image (the skip branch's RGB after the block that a render
        reaches within a third of its work, incremental.preview_block), upscaled to `size` px
        (default: the model's resolution) with 'nearest' or 'bilinear', as stage_previews:
        the first part of the very forward pass that render(state) then continues from the block cache.
        None where it would not help: the image is rendered already, the edit leaves that stage as it
        was (it starts at later layers), or the model is not rendered block by block (PGGAN, a batch
        that is not the CPU fast path) or is too small to have such a stage."""
        check_size(size)
        check_resample(resample, "previews")
        with self._lock:
            if self._render_key(state) in self._renders:   # the image is rendered already
                return None
        ws, synthesis = self.ws(state), self.synthesis_for(state)
        if self.arch == "pggan" or not BlockCache.applies(synthesis, ws):
            return None
        block = BlockCache.preview_block(synthesis)
        if block is None:
            return None
        img = self._block_render(synthesis, ws, state, until=block)
        return None if img is None else stage_image(img, size or self.img_resolution, resample)

    def stage_strip(self, state: ExplorerState, size: int | None = None, resample: str = "nearest") -> Image.Image:
        """stage_previews side by side in one image, each labelled with its resolution."""
        size = size or max(128, self.img_resolution)
        return labelled_strip([(s.image, s.label) for s in self.stage_previews(state, size, resample)])

    def stage_snapshot_folders(self) -> list[Path]:
        """Model folders of a PGGAN run's stage snapshots: <model>/stages/* or <model>/../stages/*
        (the trainer writes <run>/stages/008x008 ... beside <run>/final), the first that exists."""
        for root in (self.model_path / "stages", self.model_path.parent / "stages"):
            if root.is_dir():
                found = sorted((p for p in root.iterdir() if (p / CONFIG_NAME).is_file()), key=_stage_order)
                if found:
                    return found
        return []

    def _snapshot(self, folder: Path):
        with self._lock:
            if folder not in self._snapshots:
                G, _ = load_model(folder, device=self.device)
                self._snapshots[folder] = (G, int(G.stage_resolutions[-1]))
            return self._snapshots[folder]

    @torch.inference_mode()
    def stage_snapshots(self, state: ExplorerState, size: int | None = None,
                        resample: str = "nearest") -> list[StageImage]:
        """The state's seed rendered through each stage snapshot of the training run (see
        stage_snapshot_folders), lowest resolution first, upscaled to `size` (default: this model's
        resolution). Seed, truncation and noise mode apply; edits and mixing do not (they belong to
        this model's latent space). Unloadable snapshots are skipped with a logged warning.
        Empty when the model has no snapshots."""
        check_size(size)
        check_resample(resample, "snapshots")
        self.check_state(state)
        size = size or self.img_resolution
        shots = []
        for folder in self.stage_snapshot_folders():
            try:
                G, res = self._snapshot(folder)
            except (CheckpointError, OSError, RuntimeError) as e:
                log.warning("skipping stage snapshot %s: %s", folder, e)
                continue
            if G.z_dim != self.z_dim:
                log.warning("skipping stage snapshot %s: z_dim %d differs from the model's %d", folder, G.z_dim,
                            self.z_dim)
                continue
            ws = self.mapping(G, self.z([state.seed]), state)
            with self._lock, torch.random.fork_rng(devices=[]):
                torch.manual_seed(state.seed)
                img = G.synthesis(ws, noise_mode=state.noise_mode)
            shots.append((stage_image(img, size, resample, res), folder.name))
        shots.sort(key=lambda s: (s[0].resolution, s[1]))
        return [shot for shot, _ in shots]
