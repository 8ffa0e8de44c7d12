"""Checkpoint folders: each appears complete or not at all.

    save_dir/TSM_epoch3/   model.pdparams  optimizer.pdopt  state.json
    save_dir/TSM_best/     model.pdparams  state.json

Folders are named by the model (TSM, TSN for shift_mode none, TSM_online for the online
model) and epochs are counted from 1, as TRAIN.epoch counts them. Run folders of the earlier
layout (every model's folders named TSM_*, epochs counted from 0 in names and state.json) are
read as they are and renamed by `migrate` at the start of a training run: see `_upgraded`.

A folder is written under a hidden temporary name (`.TSM_epoch3.tmp-PID`), each file flushed
to disk, and renamed into place only then: a run killed at any moment leaves every published
folder whole, and at most a temporary one, which `clean_stale` removes at the next start.
Replacing a folder (TSM_best) moves the old one aside first and deletes it after; a kill in
between leaves the old one aside, and `clean_stale` puts it back.

state.json holds the MODEL settings the weights were trained with ('model'), which loading
compares with the model's, and for training checkpoints the epoch, the best validation top-1
and its epoch, and the whole training log up to that epoch ('log'), so the log and the
checkpoint of an epoch are published together. TSM_best is a second folder, so a kill may
come between the two: `sync_best` copies the best epoch's weights into it where it holds
others, and `prune` keeps that epoch's checkpoint until it does. model.pdparams is a plain
Paddle state dict that any Paddle tool loads; the optimizer file keys its accumulators by
our parameter names.
"""
import json
import logging
import os
import pickle
import re
import shutil

import paddle

from . import unpickle
from .errors import CheckpointError

log = logging.getLogger(__name__)

MODEL_FILE = 'model.pdparams'
OPTIMIZER_FILE = 'optimizer.pdopt'
STATE_FILE = 'state.json'
NAMES = {'bidirectional': 'TSM', 'none': 'TSN', 'online': 'TSM_online'}
_FOLDER = re.compile(r'^(?P<name>TSM|TSN|TSM_online)_(?:epoch(?P<epoch>\d+)|best)$')
# state.json of the current layout carries this key; one without counts epochs from 0
_FROM_ONE = 'epochs_from_one'
_STALE = re.compile(r'^\.(?P<name>.+)\.(?P<kind>tmp|old)-\d+$')
_LEGACY_TEMP = re.compile(r'^TSM_.+\.(pdparams|pdopt|json)\.tmp\d+$')  # earlier file layout


def run_name(settings):
    """The name of a model's checkpoint folders, from its MODEL settings."""
    return NAMES[settings.get('shift_mode', 'bidirectional')]


def epoch_dir(save_dir, epoch, name='TSM'):
    return os.path.join(save_dir, f'{name}_epoch{epoch}')


def best_dir(save_dir, name='TSM'):
    return os.path.join(save_dir, f'{name}_best')


def find_best(save_dir):
    """The best-weights folder in the run folder `save_dir` (whichever model's), or None."""
    found = [best_dir(save_dir, name) for name in NAMES.values()
             if is_checkpoint(best_dir(save_dir, name))]
    return max(found, key=os.path.getmtime) if found else None


def is_checkpoint(path):
    """True for a published checkpoint or weights folder (it has its state and weights)."""
    return (os.path.isfile(os.path.join(path, STATE_FILE))
            and os.path.isfile(os.path.join(path, MODEL_FILE)))


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flushed(path):
    with open(path, 'rb+') as f:
        os.fsync(f.fileno())


def _write_folder(folder, fill):
    """Publish `folder` atomically (see the module doc), `fill(tmp)` writing its files into
    the temporary folder, each flushed to disk."""
    parent, name = os.path.split(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f'.{name}.tmp-{os.getpid()}')
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        fill(tmp)
        _publish(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _fsync_dir(parent)


def write_checkpoint(folder, model, optimizer=None, state=None):
    """Publish `folder` with the model's weights, the optimizer state (when given) and
    `state` (JSON-able) plus the model's settings, atomically (see the module doc)."""
    def fill(tmp):
        paddle.save(model.state_dict(), os.path.join(tmp, MODEL_FILE))
        _flushed(os.path.join(tmp, MODEL_FILE))
        if optimizer is not None:
            # pickled here: paddle.save writes no file at all for an empty state (an
            # optimizer before its first step), and this is what paddle.load reads too
            with open(os.path.join(tmp, OPTIMIZER_FILE), 'wb') as f:
                pickle.dump(_optimizer_to_file(optimizer, model), f, protocol=4)
            _flushed(os.path.join(tmp, OPTIMIZER_FILE))
        record = {'model': dict(model.settings), **(state or {}), _FROM_ONE: True}
        with open(os.path.join(tmp, STATE_FILE), 'w') as f:
            json.dump(record, f, indent=1, sort_keys=True, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
    _write_folder(folder, fill)


def write_weights(folder, model, state=None):
    """A weights folder: write_checkpoint without an optimizer."""
    write_checkpoint(folder, model, None, state)


def _publish(tmp, folder):
    if not os.path.exists(folder):
        os.rename(tmp, folder)
        return
    parent, name = os.path.split(os.path.abspath(folder))
    old = os.path.join(parent, f'.{name}.old-{os.getpid()}')
    os.rename(folder, old)
    os.rename(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def clean_stale(save_dir):
    """Remove what an interrupted run left in `save_dir` (temporary folders and files), and
    put back a folder that was moved aside but not replaced. Returns the names removed."""
    if not os.path.isdir(save_dir):
        return []
    removed = []
    for entry in sorted(os.listdir(save_dir)):
        path = os.path.join(save_dir, entry)
        match = _STALE.match(entry)
        if match and match['kind'] == 'old' and not os.path.exists(
                os.path.join(save_dir, match['name'])) and is_checkpoint(path):
            os.rename(path, os.path.join(save_dir, match['name']))
            log.warning('%s: restored %s, moved aside by an interrupted run', save_dir,
                        match['name'])
        elif match or _LEGACY_TEMP.match(entry):
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
            removed.append(entry)
    if removed:
        log.info('%s: removed %d unfinished files of an interrupted run: %s', save_dir,
                 len(removed), ', '.join(removed))
    return removed


def _epoch_folders(save_dir):
    """[(model name, number in the folder name, path)] of the published epoch checkpoints."""
    found = []
    if os.path.isdir(save_dir):
        for entry in os.listdir(save_dir):
            match = _FOLDER.match(entry)
            path = os.path.join(save_dir, entry)
            if match and match['epoch'] is not None and is_checkpoint(path):
                found.append((match['name'], int(match['epoch']), path))
    return found


def complete_epochs(save_dir, name=None):
    """{epoch: folder} of the published epoch checkpoints of model `name` (None: any) in
    `save_dir`."""
    return dict(sorted((number, path) for model, number, path in _epoch_folders(save_dir)
                       if name in (None, model)))


def read_state(folder):
    """The state.json of a checkpoint folder; CheckpointError naming what is wrong, and the
    last complete epoch of the same folder when there is one."""
    path = os.path.join(folder, STATE_FILE)
    if not is_checkpoint(folder):
        raise CheckpointError(f'{folder}: not a complete checkpoint (a folder with '
                              f'{MODEL_FILE} and {STATE_FILE})' + _latest_hint(folder))
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f'{path}: cannot be read ({e})') from None
    if not isinstance(state, dict) or not isinstance(state.get('model'), dict):
        raise CheckpointError(f'{path}: no MODEL settings recorded ("model")')
    return _upgraded(state)


def _upgraded(state):
    """`state` with its epochs counted from 1: a state.json of the earlier layout counts
    them from 0 in 'epoch', 'best_epoch' and the log's rows."""
    if state.get(_FROM_ONE) or 'epoch' not in state:
        return state
    state = dict(state, **{_FROM_ONE: True, 'epoch': state['epoch'] + 1})
    if state.get('best_epoch') is not None:
        state['best_epoch'] += 1
    state['log'] = [dict(row, epoch=row['epoch'] + 1) for row in state.get('log', [])]
    return state


def _latest_hint(folder):
    epochs = complete_epochs(os.path.dirname(os.path.abspath(folder)))
    if not epochs:
        return ''
    last = max(epochs)
    return f'; the last complete epoch there is {last}: {epochs[last]}'


def latest(save_dir, name='TSM'):
    """The folder of the newest complete epoch checkpoint of model `name` in `save_dir`;
    CheckpointError when there is none."""
    epochs = complete_epochs(save_dir, name)
    if not epochs:
        raise CheckpointError(f'{save_dir}: no complete checkpoint ({name}_epochN) to '
                              f'resume from')
    return epochs[max(epochs)]


def best_epoch(state):
    """The epoch whose weights the log of a checkpoint's `state` calls best: recorded as
    'best_epoch', else (a checkpoint written before it was) the first epoch of the log with
    its best validation top-1; None before any validation."""
    if 'best_epoch' in state:
        return state['best_epoch']
    best = state.get('best_top1')
    return next((row['epoch'] for row in state.get('log', [])
                 if best is not None and row.get('valid_top1') == best), None)


def _held_epoch(folder):
    """The epoch whose weights the folder holds, None when unknown."""
    try:
        with open(os.path.join(folder, STATE_FILE)) as f:
            return _upgraded(json.load(f)).get('epoch')
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def sync_best(save_dir, epoch, name='TSM'):
    """Make the best folder hold the weights of epoch checkpoint `epoch` (the one the log
    calls best) where it does not: a run killed after publishing that epoch and before the
    best folder left older weights there. Their files are copied from the epoch folder."""
    best = best_dir(save_dir, name)
    if epoch is None or (is_checkpoint(best) and _held_epoch(best) == epoch):
        return
    source = epoch_dir(save_dir, epoch, name)
    if not is_checkpoint(source):
        log.warning('%s: the log calls epoch %d best, and its checkpoint %s is gone: %s holds '
                    'other weights', save_dir, epoch, source, best)
        return

    def fill(tmp):
        for name in (MODEL_FILE, STATE_FILE):
            shutil.copyfile(os.path.join(source, name), os.path.join(tmp, name))
            _flushed(os.path.join(tmp, name))
    _write_folder(best, fill)
    log.warning('%s: set to the weights of %s, the epoch the log calls best (it held '
                'others: a run interrupted before writing it, or resumed from an earlier '
                'epoch)', best, source)


def repair_best(save_dir, name='TSM'):
    """sync_best for the newest complete epoch checkpoint's log, at the start of a run."""
    epochs = complete_epochs(save_dir, name)
    if epochs:
        sync_best(save_dir, best_epoch(read_state(epochs[max(epochs)])), name)


def migrate(save_dir, name):
    """Rename the checkpoint folders of the earlier layout in `save_dir` (every model's named
    TSM_*, epochs from 0 in names) to this one's: model `name`, epochs from 1. One rename per
    folder, the highest epoch first, so each target is free and a kill between two renames
    leaves folders that the next call still tells apart (by the epoch their state records).
    Returns {old real path: new path} of the folders renamed."""
    renamed = {}
    old = sorted(((number, path) for model, number, path in _epoch_folders(save_dir)
                  if model == 'TSM' and number == _raw_epoch(path) and _of(path, name)),
                 reverse=True)
    for number, path in old:
        target = epoch_dir(save_dir, number + 1, name)
        if not os.path.exists(target):
            renamed[os.path.realpath(path)] = target
            os.rename(path, target)
            log.info('%s: renamed to %s (epochs are counted from 1)', path, target)
    legacy_best = best_dir(save_dir, 'TSM')
    target = best_dir(save_dir, name)
    if name != 'TSM' and is_checkpoint(legacy_best) and not os.path.exists(target) and \
            _of(legacy_best, name):
        renamed[os.path.realpath(legacy_best)] = target
        os.rename(legacy_best, target)
        log.info('%s: renamed to %s', legacy_best, target)
    return renamed


def _raw_state(folder):
    try:
        with open(os.path.join(folder, STATE_FILE)) as f:
            state = json.load(f)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _of(folder, name):
    """True when checkpoint `folder` holds weights of model `name`."""
    settings = _raw_state(folder).get('model')
    return isinstance(settings, dict) and run_name(settings) == name


def _raw_epoch(folder):
    """The epoch a state.json of the earlier layout records (None for the current one)."""
    state = _raw_state(folder)
    return None if state.get(_FROM_ONE) else state.get('epoch')


def prune(save_dir, keep, best=None, name='TSM'):
    """Delete all but the newest `keep` epoch checkpoints (0 keeps all); the best folder is
    a folder of its own, so the best weights stay whichever epoch they came from. The
    checkpoint of epoch `best` stays until the best folder holds its weights."""
    epochs = complete_epochs(save_dir, name)
    held = _held_epoch(best_dir(save_dir, name))
    for epoch in list(epochs)[:-keep] if keep else []:
        if epoch == best and held != best:
            continue
        shutil.rmtree(epochs[epoch])
        log.info('removed %s (TRAIN.keep_checkpoints %d)', epochs[epoch], keep)


def _optimizer_to_file(optimizer, model):
    # Paddle names optimizer accumulators after the parameters' global names
    # (e.g. "conv2d_53.w_0_velocity_0"), which depend on how many layers the
    # process built before. Store them under the model's structured names
    # ("layer1.0.conv1.weight/velocity") so a resume does not rely on that.
    by_global = {p.name: n for n, p in model.named_parameters()}
    out = {}
    for key, value in optimizer.state_dict().items():
        value = value.numpy() if isinstance(value, paddle.Tensor) else value
        owner = max((g for g in by_global if key.startswith(g + '_')), key=len, default=None)
        if owner is None:
            out[key] = value
            continue
        kind = re.sub(r'_\d+$', '', key[len(owner) + 1:])
        out[f'{by_global[owner]}/{kind}'] = value
    return out


def load_optimizer(folder, optimizer, model):
    """The optimizer state of checkpoint `folder` into `optimizer` (built over `model`)."""
    path = os.path.join(folder, OPTIMIZER_FILE)
    if not os.path.isfile(path):
        raise CheckpointError(f'{folder}: no {OPTIMIZER_FILE}: a weights folder (such as '
                              f'TSM_best) holds no optimizer state to resume training from')
    params = dict(model.named_parameters())
    state = {}
    for key, value in unpickle.load(path).items():
        name, sep, kind = key.partition('/')
        if sep and name in params:
            # Accumulators of a fresh optimizer get the counter suffix _0.
            state[f'{params[name].name}_{kind}_0'] = value
        else:
            state[key] = value
    optimizer.set_state_dict(state)
