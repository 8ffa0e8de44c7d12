"""Weight files: save / resume a training run, load weights or a pretrain.

A checkpoint is three files sharing a prefix: `.pdparams` (model state dict),
`.pdopt` (optimizer state, when there is one) and `.json` (run state such as
epoch and best metric). Each is written to a temporary file and renamed, so
a crash never leaves a half-written file under the final name.
"""
import json
import logging
import os
import re

import paddle

logger = logging.getLogger(__name__)

CLASSIFIER_PREFIX = 'fc.'


def _atomic_write(path, write):
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(obj, path):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def _optimizer_to_file(optimizer, model):
    # Paddle names optimizer accumulators after the parameters' global names
    # (e.g. "conv2d_53.w_0_velocity_0"), which depend on how many layers the
    # process built before. Store them under the model's structured names
    # ("layer1.0.conv1.weight/velocity") so a resume does not rely on that.
    by_global = {p.name: n for n, p in model.named_parameters()}
    out = {}
    for key, value in optimizer.state_dict().items():
        owner = max((g for g in by_global if key.startswith(g + '_')),
                    key=len, default=None)
        if owner is None:
            out[key] = value
            continue
        kind = re.sub(r'_\d+$', '', key[len(owner) + 1:])
        out[f'{by_global[owner]}/{kind}'] = value
    return out


def _optimizer_from_file(saved, model):
    params = dict(model.named_parameters())
    out = {}
    for key, value in saved.items():
        name, sep, kind = key.partition('/')
        if sep and name in params:
            # Accumulators of a fresh optimizer get the counter suffix _0.
            out[f'{params[name].name}_{kind}_0'] = value
        else:
            out[key] = value
    return out


def save_checkpoint(path_prefix, model, optimizer=None, state=None):
    """Write path_prefix.pdparams, .pdopt (if optimizer) and .json."""
    folder = os.path.dirname(path_prefix)
    if folder:
        os.makedirs(folder, exist_ok=True)
    params = model.state_dict()
    _atomic_write(f'{path_prefix}.pdparams',
                  lambda p: paddle.save(params, p))
    if optimizer is not None:
        opt = _optimizer_to_file(optimizer, model)
        _atomic_write(f'{path_prefix}.pdopt', lambda p: paddle.save(opt, p))
    _atomic_write(f'{path_prefix}.json',
                  lambda p: _write_json(dict(state or {}), p))


def _read(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such weight file')
    return paddle.load(path)


def _compare(loaded, model):
    """(missing, unexpected, mismatched) names between a file and a model."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in loaded]
    unexpected = [k for k in loaded if k not in expected]
    mismatched = [(k, list(loaded[k].shape), list(expected[k].shape))
                  for k in expected
                  if k in loaded and list(loaded[k].shape)
                  != list(expected[k].shape)]
    return missing, unexpected, mismatched


def _raise_mismatch(path, missing, unexpected, mismatched):
    lines = [f'{path}: weights do not match the model']
    if missing:
        lines.append(f'  missing in file ({len(missing)}): '
                     + ', '.join(missing))
    if unexpected:
        lines.append(f'  unexpected in file ({len(unexpected)}): '
                     + ', '.join(unexpected))
    for name, got, want in mismatched:
        lines.append(f'  shape mismatch {name}: file {got} vs model {want}')
    raise ValueError('\n'.join(lines))


def load_weights(model, path, strict=True):
    """Load a .pdparams into model; any name or shape mismatch is an error.

    strict=False tolerates missing and unexpected names (those parameters
    keep their values); shape mismatches are always errors.
    """
    loaded = _read(path)
    missing, unexpected, mismatched = _compare(loaded, model)
    if mismatched or (strict and (missing or unexpected)):
        _raise_mismatch(path, missing, unexpected, mismatched)
    model.set_state_dict({k: v for k, v in loaded.items()
                          if k not in unexpected})


def load_pretrain(model, path):
    """Load pretrained weights for fine-tuning.

    The classifier (fc.*) is skipped, with a log line, when the file lacks it
    (backbone-only file) or its shape differs (e.g. 1000 ImageNet classes vs
    the model's num_classes). Every other mismatch is an error.
    """
    loaded = _read(path)
    missing, unexpected, mismatched = _compare(loaded, model)
    fc_missing = [k for k in missing if k.startswith(CLASSIFIER_PREFIX)]
    fc_mismatched = [m for m in mismatched
                     if m[0].startswith(CLASSIFIER_PREFIX)]
    missing = [k for k in missing if k not in fc_missing]
    mismatched = [m for m in mismatched if m not in fc_mismatched]
    if missing or unexpected or mismatched:
        _raise_mismatch(path, missing, unexpected, mismatched)
    if fc_missing or fc_mismatched:
        skipped = [k for k in loaded if k.startswith(CLASSIFIER_PREFIX)]
        for k in skipped:
            del loaded[k]
        logger.info('%s: classifier %s not loaded (%s); it keeps its '
                    'initial values', path, CLASSIFIER_PREFIX + '*',
                    ', '.join(f'{n}: file {g} vs model {w}'
                              for n, g, w in fc_mismatched) or 'absent')
    model.set_state_dict(loaded)


def load_checkpoint(path_prefix, model, optimizer=None):
    """Resume: load .pdparams (strict), .pdopt (if optimizer) and .json;
    return the saved run state dict."""
    load_weights(model, f'{path_prefix}.pdparams', strict=True)
    if optimizer is not None:
        saved = _read(f'{path_prefix}.pdopt')
        optimizer.set_state_dict(_optimizer_from_file(saved, model))
    json_path = f'{path_prefix}.json'
    if not os.path.isfile(json_path):
        raise FileNotFoundError(f'{json_path}: no such checkpoint state file')
    with open(json_path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{json_path}: not valid JSON ({e})') from None
