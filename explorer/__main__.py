"""python -m explorer directions|label|project|lpips-weights|render|mix|stages|export|card  (each has --help).

Every command validates its input (output folder, seeds, edits, layer ranges, frame counts)
before any heavy work, and reports a user error as one line `error: ...` with exit status 2.
Layer ranges on the command line are inclusive, like the official tools' --styles 0-6:
`--edit 3:-1.5@0-5` edits layers 0..5, which is Edit(3, -1.5, start=0, end=6) = ws[:, 0:6] in Python.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys

from gan.cli import int_at_least, positive_int, run_command

from .session import NOISE_MODES, DirectionSettings, ExplorerError, ExplorerState, parse_edit

EDIT_HELP = ("COMPONENT:STRENGTH[@START-END]: move along PCA direction COMPONENT by STRENGTH standard "
             "deviations on ws layers START..END, both INCLUSIVE (e.g. 0:2.5 = all layers; 3:-1.5@0-5 = layers "
             "0 to 5, i.e. Python Edit(3, -1.5, start=0, end=6) = ws[:, 0:6]; 2:1@4 = layer 4 only); repeatable, "
             "edits add up")


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line `error: ...` (exit 2), like the commands' own errors."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer seed: {text!r}") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"seeds are 0 to {2 ** 32 - 1}, got {text}")
    return value


def seed_list(text: str) -> list[int]:
    from gan.seeds import parse_seeds
    try:
        return parse_seeds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def keyframe_list(text: str) -> list:
    from .keyframes import parse_keyframes
    try:
        return parse_keyframes(text, allow_files=True)
    except ExplorerError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# ---- state from flags ----------------------------------------------------------------------------

def state_from_args(args, need_seed: bool = True) -> ExplorerState:
    """An ExplorerState from --session (if given) with every flag the user passed applied on top."""
    state = ExplorerState.load(args.session) if getattr(args, "session", None) else ExplorerState()
    changes = {}
    if args.model is not None:
        changes["model"] = str(args.model)
    if getattr(args, "seed", None) is not None:
        changes["seed"] = args.seed
    if getattr(args, "class_idx", None) is not None:
        changes["class_idx"] = args.class_idx
    if args.trunc is not None:
        changes["truncation_psi"] = args.trunc
    for flag in ("blend_seed", "blend", "blend_space"):
        if getattr(args, flag, None) is not None:
            changes[flag] = getattr(args, flag)
    if args.noise_mode is not None:
        changes["noise_mode"] = args.noise_mode
    if getattr(args, "edit", None):
        changes["edits"] = [parse_edit(e) for e in args.edit]
    changes["directions"] = direction_settings(args, state.directions)
    state = state.replace(**changes)
    if not state.model:
        raise ExplorerError("no model: give --model DIR (or a --session that names one)")
    if need_seed and getattr(args, "seed", None) is None and not getattr(args, "session", None):
        raise ExplorerError("no seed: give --seed S (or a --session)")
    return state


def apply_mixing_args(args, engine, state: ExplorerState) -> ExplorerState:
    from . import mixing
    if args.mix_seed is None and args.mix_layers is None and args.mix_preset is None:
        return state
    if args.mix_seed is None and state.mix_seed is None:
        raise ExplorerError("--mix-layers/--mix-preset need --mix-seed B")
    if args.mix_layers is None and args.mix_preset is None and not state.mix_layers:
        raise ExplorerError("--mix-seed needs --mix-layers (e.g. 0-3) or --mix-preset coarse|middle|fine")
    changes = {}
    if args.mix_seed is not None:
        changes["mix_seed"] = args.mix_seed
    if args.mix_layers is not None or args.mix_preset is not None:
        changes["mix_layers"] = mixing.resolve_layers(engine.G, args.mix_layers, args.mix_preset)
    return state.replace(**changes)


# ---- commands ------------------------------------------------------------------------------------

def direction_settings(args, base: DirectionSettings = DirectionSettings()) -> DirectionSettings:
    """DirectionSettings from --samples/--components/--direction-seed/--method/--sefa-layers over `base`."""
    changes = {k: v for k, v in (("samples", args.samples), ("components", args.components),
                                 ("seed", args.direction_seed), ("method", getattr(args, "method", None)))
               if v is not None}
    layers = getattr(args, "sefa_layers", None)
    if layers is not None:
        if changes.get("method", base.method) != "sefa":
            raise ExplorerError("--sefa-layers needs --method sefa")
        from .session import parse_int_ranges
        chosen = parse_int_ranges(layers, "SeFa layers")
        if chosen != list(range(chosen[0], chosen[-1] + 1)):
            raise ExplorerError(f"--sefa-layers {layers}: give one range START-END, e.g. 0-3")
        changes.update(sefa_start=chosen[0], sefa_end=chosen[-1] + 1)
    elif changes.get("method") == "pca":
        changes.update(sefa_start=0, sefa_end=None)
    return dataclasses.replace(base, **changes).validate()


def cmd_directions(args) -> int:
    from .engine import open_engine
    settings = direction_settings(args)
    engine = open_engine(args.model)
    d = engine.directions(settings)
    print(d.table(limit=args.limit, labels=engine.direction_labels(settings)))
    print(f"directions: {d.num_components} components, {'cached at ' + d.source if d.source else 'not cached'}"
          f"{f' (computed in {d.seconds:.1f} s)' if d.seconds else ''}", file=sys.stderr)
    return 0


def cmd_label(args) -> int:
    from .engine import open_engine
    from .session import check_label
    settings = direction_settings(args)
    engine = open_engine(args.model)
    if args.component >= engine.num_components(settings):
        raise ExplorerError(f"unknown component {args.component}: this model has 0..{engine.num_components(settings) - 1}")
    text = check_label(args.text)
    where = engine.name_direction(args.component, text, settings)
    print(f"direction {args.component}: {text or '(no label)'}; labels saved to {where or 'nowhere (not writable)'}",
          file=sys.stderr)
    return 0 if where else 1


@contextlib.contextmanager
def progress_bar(total: int, desc: str, unit: str):
    """A tqdm bar on stderr as a ProgressCallback (fraction, text): the bar moves to fraction * total and
    shows the text after its last ': '. It appears at the first call, so input refused before any work
    leaves the one-line error alone on stderr."""
    from tqdm import tqdm
    bars = []

    def progress(fraction, text):
        if not bars:
            bars.append(tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False))
        bars[0].update(round(fraction * total) - bars[0].n)
        bars[0].set_postfix_str(text.rsplit(": ", 1)[-1])
    try:
        yield progress
    finally:
        for bar in bars:
            bar.close()


def cmd_project(args) -> int:
    from .checks import check_out_path
    from .engine import open_engine
    from .images import save_png
    session = check_out_path(args.out, (".json",))
    weights = session.with_suffix(".safetensors")
    if args.steps < 1:
        raise ExplorerError(f"--steps must be at least 1, got {args.steps}")
    state = state_from_args(args, need_seed=False)
    engine = open_engine(state.model)
    state = engine.check_state(state)
    lpips = None
    if args.vgg16:
        from .lpips import load_lpips
        lpips = load_lpips(args.vgg16)
    with progress_bar(args.steps, "projection", "step") as progress:
        state, result, target = engine.project(args.target, weights, state, space=args.space, steps=args.steps,
                                               seed=args.seed, use_discriminator=not args.no_discriminator,
                                               progress=progress, lpips=lpips)
    state.save(session)
    save_png(engine.render(state), session.with_suffix(".png"))
    notes = "".join(f"; {n}" for n in target.notes)
    print(f"wrote {session}, {weights.name} and {session.with_suffix('.png').name}: PSNR {result.psnr:.2f} dB "
          f"after {result.steps} steps in {result.seconds:.1f} s ({result.space}; loss: {result.loss_words}){notes}",
          file=sys.stderr)
    return 0


def cmd_lpips_weights(args) -> int:
    from .checks import check_out_path
    from .lpips import convert_weights, load_lpips
    out = convert_weights(args.vgg, args.lin, check_out_path(args.out, (".safetensors",)))
    print(f"wrote {out}: {load_lpips(out).description}", file=sys.stderr)
    return 0


def cmd_render(args) -> int:
    from .checks import check_out_path, check_size
    from .engine import open_engine
    from .images import save_png
    out = check_out_path(args.out, (".png",))
    if args.save_session:
        check_out_path(args.save_session, (".json",))
    check_size(args.size)
    state = state_from_args(args)
    engine = open_engine(state.model)
    state = engine.check_state(apply_mixing_args(args, engine, state))
    save_png(engine.render(state, size=args.size), out)
    if args.save_session:
        state.save(args.save_session)
    print(f"wrote {out}" + (f" and {args.save_session}" if args.save_session else ""), file=sys.stderr)
    return 0


def cmd_mix(args) -> int:
    from .checks import check_out_path, check_size
    from .engine import open_engine
    from .images import save_png
    out = check_out_path(args.out, (".png",))
    check_size(args.size)
    state = state_from_args(args, need_seed=False)
    engine = open_engine(state.model)
    state = engine.check_state(state)
    layers = args.layers
    preset = args.preset if args.preset is not None or layers is not None else "coarse"
    image = engine.mixing_grid(state, args.rows, args.cols, layers=layers, preset=preset, size=args.size)
    save_png(image, out)
    print(f"wrote {out} ({len(args.rows)} x {len(args.cols)} mixes)", file=sys.stderr)
    return 0


def cmd_stages(args) -> int:
    from .checks import check_out_path, check_size
    from .engine import open_engine
    from .images import labelled_strip, save_png
    out = check_out_path(args.out, (".png",))
    check_size(args.size)
    state = state_from_args(args)
    engine = open_engine(state.model)
    state = engine.check_state(state)
    if args.snapshots:
        shots = engine.stage_snapshots(state, size=args.size or max(128, engine.img_resolution),
                                       resample=args.resample)
        if not shots:
            raise ExplorerError(f"{engine.model_path} has no stage snapshots (looked for stages/ inside it "
                                f"and beside it)")
        image = labelled_strip([(s.image, s.label) for s in shots])
    else:
        image = engine.stage_strip(state, size=args.size, resample=args.resample)
    save_png(image, out)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from .checks import check_out_path
    from .engine import open_engine
    from .export import FORMATS
    check_out_path(args.out, tuple(FORMATS))
    state = state_from_args(args, need_seed=False)
    engine = open_engine(state.model)
    state = engine.check_state(state)
    n = engine.check_path(args.seeds, args.frames_per_seed, args.space, args.loop, args.easing, state)
    with progress_bar(n, "export", "frame") as progress:
        path = engine.export(state, args.seeds, args.out, frames_per_segment=args.frames_per_seed, space=args.space,
                             loop=args.loop, fps=args.fps, size=args.size, easing=args.easing, progress=progress)
    print(f"wrote {path} ({n} frames)", file=sys.stderr)
    return 0


def cmd_card(args) -> int:
    from .card import write_card
    notes = ""
    if args.notes:
        try:
            notes = open(args.notes, encoding="utf-8").read()
        except OSError as e:
            raise ExplorerError(f"--notes {args.notes}: {e.strerror or e}") from None
    readme = write_card(args.model, title=args.title or os.path.basename(os.path.normpath(args.model)),
                        command=args.command, hardware=args.hardware, notes=notes, seeds=args.seeds,
                        component=args.component, truncation_psi=args.trunc)
    print(f"wrote {readme} and its pictures", file=sys.stderr)
    return 0


# ---- parser --------------------------------------------------------------------------------------

def add_state_args(p: argparse.ArgumentParser, seed: bool = True, edits: bool = True) -> None:
    g = p.add_argument_group("image state")
    g.add_argument("--model", default=None, help="model folder (config.json + G.safetensors) or an NVIDIA "
                                                 "network .pkl (imported safely into the cache)")
    if seed:
        g.add_argument("--seed", type=seed_int, default=None, help="image seed (z as the official tools make it)")
    g.add_argument("--class", dest="class_idx", type=int_at_least(0), default=None, metavar="C",
                   help="class of a conditional model (required there, as the official generate.py's --class)")
    g.add_argument("--trunc", type=float, default=None, help="truncation psi (1 = none, default; 0.7 is typical)")
    g.add_argument("--noise-mode", choices=NOISE_MODES, default=None, help="noise inputs (default const)")
    if edits:
        g.add_argument("--edit", action="append", default=[], metavar="C:STRENGTH[@START-END]", help=EDIT_HELP)
    if seed:
        g.add_argument("--blend-seed", type=seed_int, default=None, metavar="S",
                       help="blend the image towards seed S's (by --blend)")
        g.add_argument("--blend", type=float, default=None, metavar="T",
                       help="blend from 0 (this seed's image) to 1 (the blend seed's)")
        g.add_argument("--blend-space", choices=("w", "z"), default=None,
                       help="w: lerp the two ws (default); z: slerp the two z")
    g.add_argument("--session", default=None, metavar="FILE",
                   help="start from a saved session (JSON); the flags given override its fields")
    d = p.add_argument_group("directions (for --edit)")
    add_direction_args(d, defaults=False)


def add_direction_args(g, defaults: bool) -> None:
    """--method/--sefa-layers/--samples/--components/--direction-seed; defaults False: None (keep a
    session's)."""
    s = DirectionSettings()
    pick = (lambda v: v) if defaults else (lambda v: None)
    g.add_argument("--method", choices=("pca", "sefa"), default=pick(s.method),
                   help="pca: GANSpace (PCA of sampled w, default); sefa: closed form from the style weights")
    g.add_argument("--sefa-layers", default=None, metavar="START-END",
                   help="SeFa: the style layers whose weights define the directions, inclusive (default: all)")
    g.add_argument("--samples", type=positive_int, default=pick(s.samples),
                   help=f"latents sampled for the PCA (SeFa: for its sigma, at most 10000) (default {s.samples})")
    g.add_argument("--components", type=positive_int, default=pick(s.components),
                   help=f"components kept (default {s.components})")
    g.add_argument("--direction-seed", type=seed_int, default=pick(s.seed),
                   help=f"seed of the sampled latents (default {s.seed})")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m explorer",
                           description="Explore a GAN's latent space: PCA directions, style mixing, "
                                       "resolution-stage previews, interpolation videos.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    p = sub.add_parser("directions", help="compute (or load) the cached directions (PCA or SeFa) and print them",
                       description="Compute the GANSpace PCA directions of a model, or its closed-form SeFa "
                                   "directions (--method sefa), cached next to it (or in ~/.cache/gan-latent-explorer "
                                   "when the folder is read-only), and print a table of explained variance.")
    p.add_argument("--model", required=True, help="model folder or network .pkl")
    add_direction_args(p, defaults=True)
    p.add_argument("--limit", type=positive_int, default=20, help="table rows to print (default %(default)s)")
    p.set_defaults(func=cmd_directions)

    p = sub.add_parser("label", help="name a direction (shown on its slider; shipped with the model)",
                       description="Name a PCA direction, e.g. 'sleeve length'. The label is saved beside the "
                                   "model's direction cache (directions/labels-<key>.json), so a model's author "
                                   "ships named directions with the folder; an empty --text removes it.")
    p.add_argument("--model", required=True, help="model folder or network .pkl")
    p.add_argument("--component", type=int_at_least(0), required=True, help="the direction's number")
    p.add_argument("--text", required=True, help="the label (one line, at most 60 characters)")
    add_direction_args(p.add_argument_group("the directions named (as for --edit)"), defaults=True)
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("project", help="find the latent of your own image (a session you can edit)",
                       description="Project an image into the model as NVIDIA's projector.py does (Adam on w or "
                                   "w+ and the noise maps; pixel loss at several scales, plus the model's own "
                                   "discriminator features when the folder has a D). Writes OUT.json (a session: "
                                   "render, mix, stages and export it like a seed), OUT.safetensors (its ws and "
                                   "noise maps) and OUT.png (the projected image).")
    add_state_args(p, seed=False, edits=False)
    p.add_argument("--target", required=True, help="your image (PNG, JPEG, WebP, GIF: first frame); centre-cropped "
                                                   "and resized to the model's resolution")
    p.add_argument("--space", choices=("w", "w+"), default="w+", help="w: one w for all layers; w+: one per layer "
                   "(closer, default)")
    p.add_argument("--steps", type=positive_int, default=500, help="optimisation steps (default %(default)s)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the projection's random draws (default 0)")
    p.add_argument("--no-discriminator", action="store_true", help="pixel loss only, even when the model has a D")
    p.add_argument("--vgg16", metavar="FILE", default=None, help="add LPIPS to the loss, with VGG16 weights from "
                   "this safetensors file (make one with `lpips-weights`; nothing is downloaded)")
    p.add_argument("--out", required=True, help="output session .json (the .safetensors and .png go beside it)")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("lpips-weights", help="make the VGG16 (+ LPIPS) safetensors file that project --vgg16 reads",
                       description="Convert torchvision's vgg16-397923af.pth and, optionally, the lpips package's "
                                   "weights/v0.1/vgg.pth (both torch.save pickles, read as data by the restricted "
                                   "unpickler: no code from them runs) into one safetensors file. Without --lin the "
                                   "distance weighs every channel 1 (the LPIPS paper's unlearned baseline).")
    p.add_argument("--vgg", required=True, help="torchvision's VGG16 weights (vgg16-397923af.pth)")
    p.add_argument("--lin", default=None, help="lpips' learned linear weights (weights/v0.1/vgg.pth)")
    p.add_argument("--out", required=True, help="output .safetensors")
    p.set_defaults(func=cmd_lpips_weights)

    p = sub.add_parser("render", help="render one image with edits and style mixing",
                       description="Render one seed with truncation, PCA edits and style mixing to a PNG; "
                                   "optionally save the state as a session JSON that reloads to the same pixels.")
    add_state_args(p)
    m = p.add_argument_group("style mixing (StyleGAN2)")
    m.add_argument("--mix-seed", type=seed_int, default=None, help="seed B whose ws replace the mixed layers")
    x = m.add_mutually_exclusive_group()
    x.add_argument("--mix-layers", default=None, help="ws layers taken from B, inclusive ranges, e.g. 0-3 or 0,2,4-6")
    x.add_argument("--mix-preset", choices=("coarse", "middle", "fine"), default=None,
                   help="coarse = 4-8px layers, middle = 16-32px, fine = 64px and up")
    p.add_argument("--size", type=positive_int, default=None, help="output size in px (default: the model's)")
    p.add_argument("--save-session", default=None, metavar="FILE.json", help="also save the state as a session")
    p.add_argument("--out", required=True, help="output .png")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("mix", help="style-mixing grid (StyleGAN paper figure)",
                       description="A style-mixing grid: rows = seeds A, columns = seeds B, each cell A with "
                                   "the chosen layers from B; sources in the first row and column.")
    add_state_args(p, seed=False)
    p.add_argument("--rows", type=seed_list, required=True, help="seeds A, e.g. 1,2,3 or 0-4")
    p.add_argument("--cols", type=seed_list, required=True, help="seeds B, e.g. 4,5")
    x = p.add_mutually_exclusive_group()
    x.add_argument("--layers", default=None, help="ws layers taken from B, inclusive ranges, e.g. 0-3")
    x.add_argument("--preset", choices=("coarse", "middle", "fine"), default=None,
                   help="coarse = 4-8px layers (default), middle = 16-32px, fine = 64px and up")
    p.add_argument("--size", type=positive_int, default=None, help="tile size in px (default: the model's)")
    p.add_argument("--out", required=True, help="output .png")
    p.set_defaults(func=cmd_mix)

    p = sub.add_parser("stages", help="labelled strip of the image at every resolution stage",
                       description="One seed at every resolution stage of the generator, each upscaled to a "
                                   "common size with its resolution written under it. With --snapshots, the "
                                   "seed rendered through each stage snapshot of a PGGAN training run instead.")
    add_state_args(p)
    p.add_argument("--size", type=positive_int, default=None, help="tile size in px (default: max(128, resolution))")
    p.add_argument("--resample", choices=("nearest", "bilinear"), default="nearest", help="upscaling filter")
    p.add_argument("--snapshots", action="store_true", help="use the run's stage snapshots (stages/ folder)")
    p.add_argument("--out", required=True, help="output .png")
    p.set_defaults(func=cmd_stages)

    p = sub.add_parser("export", help="interpolation video through keyframes: seeds and projected images (GIF or MP4)",
                       description="Animate through keyframes (slerp in Z or lerp in W) with the current "
                                   "truncation and edits on every frame; write a looping GIF or an MP4. A keyframe "
                                   "is a seed, 'this' (the --session's image, e.g. a projected one) or a projection "
                                   ".safetensors file (from `project`); projected images need --space w.")
    add_state_args(p, seed=False)
    p.add_argument("--seeds", type=keyframe_list, required=True,
                   help="keyframes in order, e.g. 3,7,11 or this,3,me.safetensors")
    p.add_argument("--frames-per-seed", type=positive_int, default=24,
                   help="frames from one keyframe to the next (default %(default)s)")
    p.add_argument("--space", choices=("z", "w"), default="z", help="z: slerp between z; w: lerp between ws")
    p.add_argument("--loop", action="store_true", help="return from the last seed to the first (seamless loop)")
    p.add_argument("--fps", type=float, default=24.0, help="frames per second (GIF: at most 50)")
    p.add_argument("--size", type=positive_int, default=256, help="output size in px (default %(default)s)")
    p.add_argument("--easing", choices=("linear", "ease"), default="linear", help="ease: slow in/out at keyframes")
    p.add_argument("--out", required=True, help="output .gif or .mp4")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("card", help="write a model card (README.md + sample grid, direction strip, stages)",
                       description="Render samples.png, direction-C.png (-3..+3 sigma) and stages.png into a model "
                                   "folder, cache its PCA directions there, and write README.md from config.json, "
                                   "metrics.jsonl and the text given here.")
    p.add_argument("--model", required=True, help="model folder (written into)")
    p.add_argument("--command", required=True, help="the exact training command, quoted")
    p.add_argument("--hardware", required=True, help='what it trained on, e.g. "2 CPU cores (x86_64)"')
    p.add_argument("--title", default=None, help="card title (default: the folder name)")
    p.add_argument("--notes", default=None, metavar="FILE", help="known weaknesses (Markdown file)")
    p.add_argument("--seeds", type=seed_list, default=list(range(48)), help="seeds of the sample grid (default 0-47)")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi of the sample grid (default 1)")
    p.add_argument("--component", type=int, default=0, help="PCA component shown in the strip (default 0)")
    p.set_defaults(func=cmd_card)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
