"""python app.py [--model NAME|DIR|FILE.pkl] [--public] [--host 127.0.0.1] [--port 7860]: open the latent-space explorer.

The model: --model (a folder name in assets/models/, a path, or an NVIDIA network .pkl, imported
safely into the user cache first), else $GLE_MODEL, else the folder
named in assets/models/DEFAULT, else the first model there by name; with none, the page says so
and lets you load a folder by path. Host and port: the flags, else Gradio's GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT, else 127.0.0.1:7860 (0.0.0.0 on Hugging Face Spaces, where SPACE_ID is set).
--public (automatic where SPACE_ID is set; --local turns it off): models only from the models
folder or uploaded, no path box, no server path in any answer (see explorer/ui/models.py).
--max-upload-mb: the largest model a visitor may upload (default 1024; stated beside the control).
--vgg16 FILE: VGG16 (+ LPIPS) weights for projections' loss (python -m explorer lpips-weights makes the file).
Also: $GLE_MODELS_DIR (instead of assets/models), $GLE_THREADS (torch threads), $GLE_DEBUG=1
(log each callback's time). Analytics are off.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Idle OpenMP threads sleep instead of spinning: on 2 shared cores a spinning pool stalls every render.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python app.py", description="GAN Latent Explorer: a web UI over a trained "
                                "StyleGAN2 or PGGAN model (PCA directions, style mixing, stages, export).")
    p.add_argument("--model", default=None, help="model folder name in --models-dir, a model folder path, or an "
                   "NVIDIA network .pkl (default: $GLE_MODEL, else the DEFAULT file's choice, else the first by name)")
    p.add_argument("--models-dir", default=None, help="folder of shipped models (default: assets/models)")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1; 0.0.0.0 on Spaces)")
    p.add_argument("--port", type=int, default=None, help="port (default $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $GLE_THREADS, else "
                   "one less than the cores, at most 4: a core stays free for the web server)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--public", action="store_true", default=None, help="public trust mode: only models in "
                      "--models-dir, no model path box (default on a Hugging Face Space, where SPACE_ID is set)")
    mode.add_argument("--local", dest="public", action="store_false", help="local trust mode, also on a Space")
    p.add_argument("--render-workers", type=int, default=None, help="renders run at once (default: the cores "
                   "divided by --threads)")
    p.add_argument("--max-upload-mb", type=int, default=None, help="largest model file a user may upload, in MB "
                   "(default 1024)")
    p.add_argument("--preview-after-ms", type=float, default=None, metavar="MS",
                   help="a model whose renders take MS or more shows a lower-stage preview of each new image "
                        "first (default 500; 0: every model that can, 1e9: none)")
    p.add_argument("--vgg16", metavar="FILE", default=None, help="VGG16 (+ LPIPS) weights, a safetensors file made "
                   "by `python -m explorer lpips-weights`: projections add LPIPS to their loss")
    return p.parse_args(argv)


def public_mode(args: argparse.Namespace, environ=os.environ) -> bool:
    return bool(environ.get("SPACE_ID")) if args.public is None else args.public


def render_workers(args: argparse.Namespace, threads: int, cores: int | None = None) -> int:
    """Renders in parallel: as many as the cores hold at `threads` torch threads each."""
    if args.render_workers:
        return max(1, args.render_workers)
    return max(1, min(8, (cores or os.cpu_count() or 1) // threads))


def torch_threads(args: argparse.Namespace, environ=os.environ, cores: int | None = None) -> int:
    if args.threads or environ.get("GLE_THREADS"):
        return max(1, int(args.threads or environ["GLE_THREADS"]))
    return max(1, min(4, (cores or os.cpu_count() or 1) - 1))


def server_address(args: argparse.Namespace, environ=os.environ) -> tuple[str, int]:
    """(host, port): the flags, else Gradio's own variables, else loopback (all interfaces on Spaces):7860."""
    host = args.host or environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if environ.get("SPACE_ID") else "127.0.0.1")
    port = args.port or int(environ.get("GRADIO_SERVER_PORT") or 7860)
    return host, port


def main(argv=None) -> int:
    from gan.allocator import keep_freed_memory
    keep_freed_memory()    # before gradio starts its threads (see gan/allocator.py)
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if os.environ.get("GLE_DEBUG"):  # callback timings
        logging.getLogger("explorer").setLevel(logging.DEBUG)
    import torch
    threads = torch_threads(args)
    torch.set_num_threads(threads)
    from explorer import ui
    from gan.io.checkpoint import resolve_model_folder
    models_dir = args.models_dir or os.environ.get("GLE_MODELS_DIR") or ui.MODELS_DIR
    host, port = server_address(args)
    public = public_mode(args)
    roots = ui.ModelRoots(models_dir, public=public)
    lpips = None
    if args.vgg16:
        from explorer.lpips import load_lpips
        from explorer.session import ExplorerError
        try:
            lpips = load_lpips(args.vgg16)     # once: every projection shares it
        except ExplorerError as e:
            print(f"error: --vgg16: {e}", file=sys.stderr)
            return 2
    asked = args.model or os.environ.get("GLE_MODEL")
    model = None
    try:
        # Public: even the operator's --model is a name in the models folder, so every model the
        # page can reach lies in the allowed roots.
        model = roots.resolve(asked) if asked else ui.default_model(models_dir)
        if model is not None:
            model = resolve_model_folder(model)   # a .pkl: imported once (a progress bar), then its folder
            ui.warm_up(model, **roots.engine_kwargs(model))
    except (ValueError, OSError) as e:  # a bad --model, or a broken shipped model: one line
        if asked:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"warning: cannot open {model}: {e}; starting without a model", file=sys.stderr)
        model = None
    if model is None:
        print(f"no model in {models_dir}: the page will ask for a model folder", file=sys.stderr)
    ui.ExplorerUI(model, models_dir, public=public, render_workers=render_workers(args, threads),
                  max_upload_mb=args.max_upload_mb or ui.MAX_UPLOAD_MB, lpips=lpips,
                  preview_after_s=ui.PREVIEW_AFTER_S if args.preview_after_ms is None else args.preview_after_ms / 1000,
                  ).launch(host=host, port=port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
