"""How memory is allocated, three ways: glibc's malloc as it comes, PyTorch's transparent huge pages
(THP_MEM_ALLOC_ENABLE=1) and gan/allocator.py's keep_freed_memory() (what the programs do): synthesis ms
(fast path, batch 1) and, with --train, training img/s, with each one's peak RSS, printed as a table.

    python bench/allocation.py                      # 256 px StyleGAN2 and 1024 px config-F, 3 rounds
    python bench/allocation.py --train --rounds 2   # and training steps at 32 and 64 px (many minutes)

The settings hold for a whole process, so each cell runs in child processes, the three ways in turn, round
after round (a change in the machine's load then falls on all alike); a cell is the median over rounds of
each child's median, "x" the ratio to glibc as it comes. The models are bench/generator.py's (random
weights, noise const); the training steps are bench/train.py's (batch 32).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SYNTHESIS = ["stylegan2-256", "stylegan2-1024-F"]   # bench/generator.py's configs, by name
TRAINING = [("stylegan2", 32), ("pggan", 32), ("stylegan2", 64), ("pggan", 64)]


def child(kind: str, name: str, reps: int, threads: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gan.allocator import keep_freed_memory
    keep_freed_memory()    # unless GAN_KEEP_FREED_MEMORY=0
    import torch
    if threads:
        torch.set_num_threads(threads)
    if kind == "synthesis":
        from generator import CONFIG_F, CONFIGS, median_seconds, model_config
        from gan.models.networks import build_generator
        from gan.seeds import z_from_seeds
        _, arch, res, base, _ = next(c for c in CONFIGS + [CONFIG_F] if c[0] == name)
        torch.manual_seed(0)
        G = build_generator(model_config(arch, res, base)).eval()
        with torch.inference_mode():
            ws = G.mapping(z_from_seeds([0], G.z_dim))
            G.synthesis(ws, noise_mode="const")
            value = 1000 * median_seconds([lambda: G.synthesis(ws, noise_mode="const")], reps)[0]
    else:
        from train import time_steps
        arch, res = name.split("-")
        value = time_steps(arch, int(res), 32, reps, 1, "cpu")[0]
    return {"value": value, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# (name, environment): glibc's malloc as it comes (4 KB pages; blocks over 32 MB mmapped, and unmapped
# when freed); PyTorch's huge pages for blocks of 2 MB and more; malloc keeping freed memory
VARIANTS = [("glibc", {"GAN_KEEP_FREED_MEMORY": "0", "THP_MEM_ALLOC_ENABLE": "0"}),
            ("huge pages", {"GAN_KEEP_FREED_MEMORY": "0", "THP_MEM_ALLOC_ENABLE": "1"}),
            ("kept", {"GAN_KEEP_FREED_MEMORY": "1", "THP_MEM_ALLOC_ENABLE": "0"})]


def run_child(kind: str, name: str, variant: dict, reps: int, threads: int) -> dict:
    env = {**os.environ, **variant}
    r = subprocess.run([sys.executable, __file__, "--child", kind, name, "--reps", str(reps),
                        "--threads", str(threads)], env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="child processes per cell and page size")
    p.add_argument("--reps", type=int, default=5, help="timed calls (synthesis) or steps (training) per child")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--train", action="store_true", help="also training img/s at 32 and 64 px")
    p.add_argument("--only", default="", help="comma-separated names to run (stylegan2-256, pggan-32, ...)")
    p.add_argument("--child", nargs=2, metavar=("KIND", "NAME"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.reps, args.threads)))
        return 0
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    mode = thp.read_text().strip() if thp.exists() else "not available"
    print(f"transparent huge pages: {mode}; {args.rounds} rounds, {args.reps} calls or steps per child; "
          f"x: against glibc")
    cells = [("synthesis", name, "ms") for name in SYNTHESIS]
    cells += [("training", f"{arch}-{res}", "img/s") for arch, res in TRAINING] if args.train else []
    if args.only:
        cells = [c for c in cells if c[1] in args.only.split(",")]
    header = f"{'what':<28}" + "".join(f" {v:>13} {'x':>5} {'RSS MB':>6}" for v, _ in VARIANTS)
    print(header)
    print("-" * len(header))
    for kind, name, unit in cells:
        runs = [[] for _ in VARIANTS]
        t0 = time.perf_counter()
        for _ in range(args.rounds):
            for (_, env), out in zip(VARIANTS, runs):
                out.append(run_child(kind, name, env, args.reps, args.threads))
        values = [statistics.median(r["value"] for r in out) for out in runs]
        line = f"{kind + ' ' + name:<28}"
        for value, out in zip(values, runs):
            gain = values[0] / value if unit == "ms" else value / values[0]
            line += f" {value:>7.1f} {unit:<5} {gain:>4.2f}x {max(r['rss_mb'] for r in out):>6.0f}"
        print(line + f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
