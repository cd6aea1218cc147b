"""Makes docs/edit-your-image.png, the README's "Edit your own image" picture, with the same calls as the
CLI commands shown there: a Fashion-MNIST test picture (not a generated one) projected into the shipped
default model, then edited along a direction and blended towards a seed.

    .venv/bin/python docs/walkthrough.py          # 500 projection steps: see bench/project.py for the time
"""
from __future__ import annotations

import gzip
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.engine import Engine  # noqa: E402
from explorer.images import labelled_strip  # noqa: E402

FASHION_TEST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
PICTURE = 19          # a t10k image: a T-shirt
TILE = 128


def main() -> int:
    with gzip.open(FASHION_TEST) as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    photo = Image.fromarray(np.pad(raw[PICTURE], 2))            # 28 -> 32 px, as the training images
    engine = Engine(ROOT / "assets" / "models" / "fashion-stylegan2", show_bars=False)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "my-shirt.png"
        photo.save(target)
        state, result, _ = engine.project(target, Path(tmp) / "me.safetensors",
                                          engine.default_state(truncation_psi=0.7), steps=500, seed=0)
        tiles = [(photo.resize((TILE, TILE), Image.Resampling.NEAREST).convert("RGB"), "your image"),
                 (engine.render(state, size=TILE).convert("RGB"), f"projected ({result.psnr:.1f} dB)")]
        for c, s in ((1, 2.5), (1, -2.5), (3, 2.5)):
            tiles.append((engine.render(state.with_edit(c, s), size=TILE).convert("RGB"), f"direction {c} {s:+g}"))
        tiles.append((engine.render(state.replace(blend_seed=7, blend=0.5), size=TILE).convert("RGB"),
                      "blend with seed 7"))
    out = ROOT / "docs" / "edit-your-image.png"
    labelled_strip(tiles).save(out)
    print(f"wrote {out}: PSNR {result.psnr:.2f} dB in {result.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
