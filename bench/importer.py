"""Importer speed and memory on a synthetic config-F pickle: seconds and peak RSS, printed as a table.

    python bench/importer.py                     # ADA (PyTorch) and TensorFlow config-F, 1024x1024
    python bench/importer.py --formats ada       # one format
    python bench/importer.py --resolution 256    # smaller and quicker

Writes an official-format pickle (tests/official_pickles.py) holding G, D and G_ema (TF: G, D, Gs) of a
randomly initialised 1024x1024 config-F network (channel_base 32768, channel_max 512, 8 mapping layers;
about 360 MB: the size of NVIDIA's ffhq.pkl), then imports it with `python -m gan import` in a fresh
process and reports that process's wall time (including Python and torch start-up, and the sha256 pass),
its import time alone, and its peak resident memory (VmHWM) against the file size. The target
(issue 13): at most 20 s and a peak below 2x the file size on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402

import official_pickles as op  # noqa: E402
from gan.models.config import ModelConfig  # noqa: E402
from gan.models.networks import build_discriminator, build_generator  # noqa: E402

# Peak RSS from /proc/self/status VmHWM: this process's own high-water mark. (getrusage's ru_maxrss would
# not do: Linux carries the parent's RSS at fork over into the child's ru_maxrss across exec.)
CHILD = r"""
import json, sys, time
t0 = time.time()
from gan.importers import import_pickle
t1 = time.time()
out, model = import_pickle(sys.argv[1], sys.argv[2], progress=False)
t2 = time.time()
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"import_s": t2 - t1, "startup_s": t1 - t0, "peak_rss_kb": hwm,
                  "format": model.format, "has_D": model.D is not None}))
"""


def write(fmt: str, path: Path, res: int) -> float:
    conv_clamp = 256.0 if fmt == "ada" else None
    cfg = ModelConfig(img_resolution=res, channel_base=32768, channel_max=512, mapping_layers=8, conv_clamp=conv_clamp)
    torch.manual_seed(0)
    G, D = build_generator(cfg).eval(), build_discriminator(cfg).eval()
    t = time.time()
    if fmt == "ada":
        op.write_ada_pickle(path, G, cfg, D=D, G=G)
    else:
        op.write_tf_pickle(path, G, cfg, D=D, G=G)
    return time.time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--formats", default="ada,tf", help="comma-separated: ada, tf")
    ap.add_argument("--resolution", type=int, default=1024)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            src, out = Path(tmp) / f"{fmt}.pkl", Path(tmp) / f"{fmt}-model"
            write_s = write(fmt, src, args.resolution)
            size = src.stat().st_size
            t = time.time()
            proc = subprocess.run([sys.executable, "-c", CHILD, str(src), str(out)], cwd=ROOT, capture_output=True,
                                  text=True)
            wall = time.time() - t
            if proc.returncode:
                sys.exit(proc.stderr)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((fmt, r["format"], size / 2**20, write_s, wall, r["import_s"], r["peak_rss_kb"] / 1024,
                         r["peak_rss_kb"] * 1024 / size, r["has_D"]))
            src.unlink()
    print(f"config-F {args.resolution}x{args.resolution}, {torch.get_num_threads()} torch threads")
    print(f"{'format':<24} {'file MiB':>9} {'write s':>8} {'wall s':>7} {'import s':>9} {'peak RSS MiB':>13} "
          f"{'RSS/file':>9}  D")
    for fmt, name, mib, write_s, wall, imp, rss, ratio, has_d in rows:
        print(f"{name:<24} {mib:9.0f} {write_s:8.1f} {wall:7.1f} {imp:9.1f} {rss:13.0f} {ratio:9.2f}  {'yes' if has_d else 'no'}")


if __name__ == "__main__":
    main()
