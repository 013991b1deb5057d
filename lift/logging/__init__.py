"""Run logging: TensorBoard event files, the images they show, console progress, running figures."""

from lift.logging.meter import Meter
from lift.logging.progress import Progress, format_duration
from lift.logging.tensorboard_logger import TensorBoardLogger, hparam_values

__all__ = ["Meter", "Progress", "TensorBoardLogger", "format_duration", "hparam_values"]
