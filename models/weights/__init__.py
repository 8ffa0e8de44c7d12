"""Weights of a TSM: where they come from, how any layout becomes ours, checkpoints.

Every weight file reaches a model through one path: `resolve` (a file, a checkpoint folder, a
URL or a published name, downloaded into the cache), then `convert.convert_file` (any layout
models/weights/names.py knows, read without running code, checked against the model and
against the MODEL settings the weights were trained with where those are recorded).
train.py starts from `load_for_training` or `resume`, eval.py and predict.py from
`load_for_inference`. The network (models/tsm.py and its parts) never imports this package.
"""
import logging
import os

from .checkpoint import (CheckpointError, best_dir, best_epoch, clean_stale, complete_epochs,
                         epoch_dir, find_best, is_checkpoint, latest, load_optimizer, migrate,
                         prune, read_state, repair_best, run_name, sync_best, write_checkpoint,
                         write_weights)
from ..finite import non_finite_parameter
from .convert import check_architecture, convert_file, settings_problems
from .download import DownloadError
from .errors import WeightsError, refuse_or_warn
from .published import PUBLISHED, recorded_settings, resolve

__all__ = ['CheckpointError', 'DownloadError', 'PUBLISHED', 'WeightsError', 'best_dir',
           'best_epoch', 'clean_stale', 'complete_epochs', 'epoch_dir', 'find_best',
           'is_checkpoint', 'latest', 'load_for_inference', 'load_for_training', 'migrate',
           'prune', 'read_state', 'repair_best', 'resume', 'run_name', 'sync_best',
           'write_checkpoint', 'write_weights']

log = logging.getLogger(__name__)


def check_settings(model, spec, for_training=False):
    """Compare the model's settings with those `spec` records, before anything is
    downloaded: WeightsError for inference, warnings for training. Returns the record."""
    recorded = recorded_settings(spec)
    check_architecture(recorded or {}, model.settings, f'weights {spec!r}')
    problems = settings_problems(recorded or {}, model.settings)
    refuse_or_warn(problems, for_training,
                   f'weights {spec!r} were trained with other MODEL settings than this model '
                   f'has', 'Set the MODEL section as the weights were trained', log,
                   f'fine-tuning {spec} with other settings')
    return recorded


def _load(model, spec, for_training, cache_dir):
    recorded = check_settings(model, spec, for_training)

    def verify(path):  # that a download loads into this network; the load below says the rest
        convert_file(path, model, recorded=recorded, for_training=True, checked=True,
                     quiet=True)
    verify.__name__ = f'a conversion for the {type(model).__name__} model'
    path = resolve(spec, verify, cache_dir)
    state = convert_file(path, model, recorded=recorded, for_training=for_training,
                         checked=True)
    # A skipped classifier keeps its current values (set_state_dict warns on absent keys).
    full = dict(model.state_dict())
    full.update(state)
    model.set_state_dict(full)
    bad = non_finite_parameter(model)
    if bad is not None:
        raise WeightsError(f'{path}: {bad} holds NaN or infinity (the weights of a diverged '
                           f'training run?)')
    return path


def load_for_inference(model, spec, cache_dir=None):
    """All of the model's parameters from `spec`; any mismatch is an error. `cache_dir`:
    where downloads go (None or '': the default of `resolve`). Returns the file read."""
    if not spec:
        raise WeightsError('no weights given: pass --weights (a file, folder, URL or name)')
    path = _load(model, spec, False, cache_dir)
    log.info('loaded weights %s', path)
    return path


def load_for_training(model, spec, cache_dir=None):
    """Start weights from `spec` (the classifier skipped when class counts differ); '' starts
    from random initialisation."""
    if not spec:
        log.info('no pretrain weights: training from random initialisation')
        return
    try:
        path = _load(model, spec, True, cache_dir)
    except DownloadError as e:  # offline: say what else a run can start from
        raise DownloadError(f'{e}\n{other_starts(model)}') from e
    log.info('loaded pretrain weights %s', path)


def other_starts(model):
    """The ways to start training without a download, in one line."""
    settings = model.settings
    backbone = settings.get('backbone', 'resnet')
    backbone = (f"an ImageNet ResNet-{settings['depth']} file (a Paddle .pdparams, or "
                f"torchvision's .pth with torch installed)" if backbone.startswith('resnet')
                else "a PP-TSMv2 or PaddleClas PP-LCNetV2 .pdparams" if backbone == 'pplcnet_v2'
                else 'a MobileNetV2 TSM file (the original .pth, a PP-TSM .pdparams)')
    return (f"Or start from what is here: --pretrain '' (or -o TRAIN.pretrain='') trains from "
            f"random initialisation; --pretrain PATH starts from a checkpoint (a run's "
            f"TSM_best folder) or {backbone}")


def resume(folder, model, optimizer):
    """Model and optimizer state from the epoch checkpoint `folder`; returns its state
    (epoch, best top-1, log). The model must be built with the settings it records."""
    state = read_state(folder)
    if 'epoch' not in state:
        raise CheckpointError(f'{folder}: a weights folder, not an epoch checkpoint '
                              f'({complete_epochs_hint(folder)})')
    _load(model, folder, False, None)
    load_optimizer(folder, optimizer, model)
    return state


def complete_epochs_hint(folder):
    """Where the epoch checkpoints next to `folder` are, for messages."""
    epochs = complete_epochs(os.path.dirname(os.path.abspath(folder)))
    if not epochs:
        return 'there are no epoch checkpoints beside it'
    return f'resume from an epoch checkpoint such as {epochs[max(epochs)]}'
