"""Training: the loop (`loop.py`) over a per-architecture trainer (`trainer.py`, `stylegan2.py`,
`pggan.py`), with its configuration (`config.py`), command line (`cli.py`), run folder, resume and
log (`run.py`), exact-resume snapshots (`state.py`), pure losses, differentiable augmentation and
torch.distributed plumbing.

The names below are imported on first use (gan/lazy_exports.py): the command line's options
(cli.py, config.py, presets.py) import no torch, so `python -m gan train --help` answers at once."""
from ..lazy_exports import lazy_exports

__all__ = ["TrainConfig", "TrainConfigError", "add_train_arguments", "train", "train_command"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "TrainConfig": "config", "TrainConfigError": "config", "add_train_arguments": "cli", "train_command": "cli",
    "train": "loop"})
