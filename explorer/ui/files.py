"""The callbacks that make files or grids: sessions, mixing grids, interpolation exports."""
from __future__ import annotations

import secrets
import shutil
import time
import zipfile
from pathlib import Path

import gradio as gr

from gan.seeds import parse_seeds

from ..checks import check_seeds
from ..engine import MAX_GRID_SEEDS
from ..export import GIF_MAX_FPS
from ..keyframes import describe, parse_keyframes
from ..session import ExplorerError
from .callbacks import EXPORT_KEEP_S, FPS_RANGE, FRAMES_RANGE, auto_keyframes
from .widgets import adjusted, clamp


SESSION_FILE, PROJECTION_FILE = "session.json", "projection.safetensors"   # a projected session's .zip
MAX_SESSION_ZIP = 1 << 30


class Files:
    """Mixed into ExplorerUI, after Callbacks (self.engine, self.roots)."""

    def save_session(self, user):
        """The session as JSON; a projected image's session as a .zip of the JSON and its projection
        file (named relative to each other), which Load session takes back."""
        if user is None:
            raise ExplorerError("no model loaded: nothing to save")
        state = self.engine(user.state).check_state(user.state)
        # Named by the model's ref, never the server's path: it loads on any machine with that model.
        portable = state.replace(model=self.roots.ref_of(state.model))
        folder = self.new_export_folder()
        if state.projection is None:
            return str(portable.save(folder / f"session-seed{state.seed}.json"))
        shutil.copyfile(state.projection, folder / PROJECTION_FILE)
        json_path = portable.replace(projection=str(folder / PROJECTION_FILE)).save(folder / SESSION_FILE)
        bundle = folder / "session-projected.zip"
        with zipfile.ZipFile(bundle, "w") as zf:
            for member in (json_path, folder / PROJECTION_FILE):
                zf.write(member, member.name)
        return str(bundle)

    def unpack_session(self, path) -> Path:
        """An uploaded session: the .json itself, or the JSON of a projected session's .zip, unpacked
        with its projection file into a fresh folder (only those two members are read)."""
        path = Path(path)
        if path.suffix.lower() != ".zip":
            return path
        folder = self.new_export_folder()
        try:
            with zipfile.ZipFile(path) as zf:
                members = {i.filename: i for i in zf.infolist()}
                if set(members) != {SESSION_FILE, PROJECTION_FILE}:
                    raise ExplorerError(f"{path.name}: a session .zip holds {SESSION_FILE} and {PROJECTION_FILE} "
                                        "only (as Save session writes it)")
                if sum(i.file_size for i in members.values()) > MAX_SESSION_ZIP:
                    raise ExplorerError(f"{path.name}: too large for a session")
                for name in (SESSION_FILE, PROJECTION_FILE):
                    (folder / name).write_bytes(zf.read(name))
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ExplorerError(f"{path.name}: not a readable session zip ({type(e).__name__})") from None
        return folder / SESSION_FILE

    def make_grid(self, user, rows, cols):
        state = user.state if user is not None else None
        engine = self.engine(state)
        layers = list(state.mix_layers) or None
        tile = engine.img_resolution * max(1, 128 // engine.img_resolution)
        rows, cols = parse_seeds(rows), parse_seeds(cols)
        image = engine.mixing_grid(state, rows, cols, layers=layers, preset=None if layers else "coarse", size=tile)
        taken = f"layers {', '.join(map(str, layers))}" if layers else "the coarse layers"
        return gr.update(value=image, label=f"rows: seeds {', '.join(map(str, rows))} (A) · columns: seeds "
                                            f"{', '.join(map(str, cols))} (B), {taken} from B")

    @staticmethod
    def check_grid(rows, cols):
        check_seeds(parse_seeds(rows), "row seeds", MAX_GRID_SEEDS)
        check_seeds(parse_seeds(cols), "column seeds", MAX_GRID_SEEDS)

    @staticmethod
    def export_values(frames, fps, fmt) -> tuple[int, int, list[str]]:
        """Frames per seed and fps within the sliders' ranges (GIF: at most GIF_MAX_FPS), and what
        was adjusted, said in words."""
        if frames is None or fps is None:
            raise ExplorerError("give the frames per seed and the fps")
        hi_fps = min(FPS_RANGE[1], GIF_MAX_FPS) if fmt == "GIF" else FPS_RANGE[1]
        f = clamp(frames, *FRAMES_RANGE, "frames per seed", integer=True, warn=False)
        p = clamp(fps, FPS_RANGE[0], hi_fps, f"{fmt} fps", integer=True, warn=False)
        notes = [adjusted(frames, f, *FRAMES_RANGE, "frames per seed")] if f != frames else []
        notes += [adjusted(fps, p, FPS_RANGE[0], hi_fps, f"{fmt} fps")] if p != fps else []
        return f, p, notes

    def export_seeds(self, user, keyframes, frames, space, loop, fps, size, fmt) -> list:
        """The keyframes (seeds and THIS, the image shown; never a path), once everything the export needs
        is valid (cheap: nothing rendered)."""
        state = user.state if user is not None else None
        engine = self.engine(state)
        keys = parse_keyframes(keyframes if keyframes and keyframes.strip() else auto_keyframes(state.seed))
        frames, fps, _ = self.export_values(frames, fps, fmt)
        engine.check_path(keys, frames, space, bool(loop), state=state)
        return keys

    def check_export(self, *args) -> None:
        self.export_seeds(*args)

    def adjust_export(self, user, keyframes, frames, space, loop, fps, size, fmt):
        """The frames and fps boxes set to what the export will use, and a line that says so."""
        f, p, notes = self.export_values(frames, fps, fmt)
        seeds = self.export_seeds(user, keyframes, f, space, loop, p, size, fmt)
        n = self.engine(user.state).check_path(seeds, f, space, bool(loop))
        note = f"{n} frames at {p} fps ({n / p:.1f} s)" + "".join(f"; {x}" for x in notes)
        return {self.frames: f, self.fps: p, self.export_note: note}

    def export(self, user, keyframes, frames, space, loop, fps, size, fmt, progress=gr.Progress()):
        seeds = self.export_seeds(user, keyframes, frames, space, loop, fps, size, fmt)
        path = self.write_export(user.state, seeds, int(frames), space, bool(loop), float(fps), int(size), fmt,
                                progress)
        is_gif = path.suffix == ".gif"
        return (gr.update(value=str(path) if is_gif else None, visible=is_gif),
                gr.update(value=None if is_gif else str(path), visible=not is_gif), str(path))

    def write_export(self, state, seeds, frames, space, loop, fps, size, fmt, progress) -> Path:
        first, last = describe(seeds[0]), describe(seeds[-1])
        out = self.new_export_folder() / f"interpolation-{first}-{last}{'.gif' if fmt == 'GIF' else '.mp4'}"
        progress(0, desc="rendering frames")
        return self.engine(state).export(state, seeds, out, frames_per_segment=frames, space=space, loop=loop,
                                         fps=fps, size=size, progress=lambda f, text: progress(f, desc=text))

    def new_export_folder(self) -> Path:
        """A fresh, unguessably named folder under the export root (a user's files are reachable
        only through the link handed to that user); folders older than EXPORT_KEEP_S are removed."""
        self.export_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        cutoff = time.time() - EXPORT_KEEP_S
        for old in self.export_root.iterdir():
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        folder = self.export_root / secrets.token_urlsafe(24)
        folder.mkdir(mode=0o700)
        return folder
