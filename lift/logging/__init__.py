"""Run logging: TensorBoard event files, the images they show, and console progress."""

from lift.logging.progress import Progress, format_duration
from lift.logging.tensorboard_logger import TensorBoardLogger, hparam_values

__all__ = ["Progress", "TensorBoardLogger", "format_duration", "hparam_values"]
