"""Training: the loop (`loop.py`) over a per-architecture trainer (`trainer.py`, `stylegan2.py`,
`pggan.py`), with its configuration (`config.py`), command line (`cli.py`), run folder, resume and
log (`run.py`), exact-resume snapshots (`state.py`), pure losses, differentiable augmentation and
torch.distributed plumbing."""
from .cli import add_train_arguments, train_command
from .config import TrainConfig, TrainConfigError
from .loop import train

__all__ = ["TrainConfig", "TrainConfigError", "add_train_arguments", "train", "train_command"]
