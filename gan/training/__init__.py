"""Training: the loop (`loop.py`) over a per-architecture trainer (`trainer.py`, `stylegan2.py`,
`pggan.py`), with its configuration (`config.py`), command line (`cli.py`), run folder, resume and
log (`run.py`), exact-resume snapshots (`state.py`), pure losses, differentiable augmentation and
torch.distributed plumbing.

The names below are imported on first use (gan/lazy_exports.py): the command line's options
(cli.py, config.py, presets.py) import no torch, so `python -m gan train --help` answers at once."""
from ..lazy_exports import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ("TrainConfig", "TrainConfigError"), "cli": ("add_train_arguments", "train_command"), "loop": ("train",)})
