"""Training stage: `prnet train` (prnet/cli/commands/train.py) is a thin CLI over `train(make_config(...))`.

    loop.py     the training loop, top to bottom: train, resume_config, read_metrics, evaluate
    config.py   TrainConfig (every training choice, typed), make_config and the presets of `--preset`
    data.py     sources of Samples -> augmented tensors, in an order that resumes exactly
    augment.py  training augmentation of image + position map (resizing: prnet/geometry/resample.py)
    losses.py   the weighted MSE loss and on-device landmark readout (compress and bench use them too)
    stop.py     Ctrl-C / SIGTERM: finish the step, write its checkpoint, return (resumable)
    progress.py the progress bar

    from prnet.train import make_config, train
    result = train(make_config("cpu-small", data="DIR", out_dir="runs/x"))
"""

from prnet.train.config import TrainConfig, make_config
from prnet.train.loop import train

__all__ = ["TrainConfig", "make_config", "train"]
