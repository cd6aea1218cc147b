"""Training: the loop (`loop.py`) over a per-architecture trainer (`stylegan2.py`, `pggan.py`),
with its configuration (`config.py`), run folder and log (`run.py`), exact-resume snapshots
(`state.py`), pure losses, differentiable augmentation and torch.distributed plumbing."""
from .config import TrainConfig, TrainConfigError
from .loop import add_train_arguments, train, train_command

__all__ = ["TrainConfig", "TrainConfigError", "add_train_arguments", "train", "train_command"]
