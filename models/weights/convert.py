"""Convert published TSM / ResNet weights of any supported layout into our state dict.

    python -m models.weights.convert SRC DST [--depth 50 --num_classes 400 --seg_num 8]

A bad flag exits with status 2, a file that cannot be read or converted with status 1, each
with one message.

Names are mapped by models/weights/names.py. PaddleVideo and the old Paddle zoo shift
with paddle's temporal_shift, whose first fold of channels comes from frame t-1 and the
second from t+1; our shift (and the original PyTorch one) takes the first fold from t+1
and the second from t-1. For a stream x of C channels and the permutation P that swaps
those two folds, shift_ours(P x) = P shift_paddle(x). So every residual stream (the stem
output and each stage's output; a block's input is the stream before it) is stored
permuted: the convs, BNs and downsample that write a stream get their output channels
permuted, the first conv of each block, the downsample and fc get their input channels
permuted. Identity paths, ReLU, max/avg pooling commute with P, so the converted network
computes exactly what the source computed.

Weights may come with the MODEL settings they were trained with (our checkpoints record
them, the published names state them); a model built with other settings that change what
it computes from the same weights is refused for inference, and named in a warning when
training starts from them (fine-tuning may change them on purpose).
"""
import argparse
import logging
import sys

import numpy as np

from ..resnet import RESNET_SPECS, BottleneckBlock
from ..shift import SHIFT_MODES
from ..tsm import DEFAULT_DEPTH, MOBILENETS, TSM
from . import lcnet
from .checkpoint import write_weights
from .errors import WeightsError, refuse_or_warn
from .files import read_state
from .names import (FORMATS, TORCH_FORMATS, detect_format, is_ignored, our_name,
                    source_backbone, unsupported)
from .streams import needs_swap, permute_streams, shift_problems, source_shift

__all__ = ['convert_state', 'convert_file', 'detect_format', 'FORMATS']

log = logging.getLogger(__name__)


class _Silent:
    """A log that keeps its warnings to itself."""

    def warning(self, *args):
        pass


_SILENT = _Silent()

CLASSIFIER = ('fc.weight', 'fc.bias')
# MODEL settings that change what a network computes from the same weights. dropout is not
# one: it is the identity in evaluation, and a training choice when fine-tuning.
COMPUTATION = ('backbone', 'depth', 'num_classes', 'seg_num', 'shift_mode', 'shift_place',
               'shift_ratio', 'shift_every', 'temporal_attention')


def settings_problems(recorded, settings):
    """'MODEL.key: ...' for each COMPUTATION key where the weights' `recorded` settings differ
    from the model's `settings` (keys absent from the record are not compared)."""
    return [f'MODEL.{k}: model {settings[k]!r}, weights trained with {recorded[k]!r}'
            for k in COMPUTATION
            if k in recorded and recorded[k] != settings.get(k) and k not in ARCHITECTURE]


# settings that make other parameters (names, shapes): weights of another value cannot be
# loaded, for fine-tuning either, and the override that fits them is the one thing to say
ARCHITECTURE = ('backbone', 'depth', 'temporal_attention')


def check_architecture(theirs, settings, where):
    """WeightsError in one line naming the override that fits the weights, when `theirs`
    ({key: value} of the weights' network, where known) builds another network than
    `settings`."""
    differ = {k: v for k, v in theirs.items()
              if k in ARCHITECTURE and v is not None and v != settings.get(k)}
    if differ:
        raise WeightsError(
            f'{where}: the weights are of a network with '
            + ', '.join(f'MODEL.{k}={v!r}' for k, v in differ.items()) + ', the config '
            'builds ' + ', '.join(f'MODEL.{k}={settings[k]!r}' for k in differ) + ': set '
            + ' '.join(f'-o MODEL.{k}={v}' for k, v in differ.items())
            + ' (or start from weights of the configured network)')


def _network_of(source_names, names):
    """{'backbone', 'depth'} of the network whose parameters are `source_names` in their
    layout and `names` in ours; depth None where the blocks fit no ResNet."""
    blocks = tuple(len({n.split('.')[1] for n in names if n.startswith(f'layer{k}.')})
                   for k in range(1, 5))
    bottleneck = any(n.startswith(('layer1.0.conv3.', 'layer1.0.bn3.')) for n in names)
    backbone = source_backbone(source_names)
    if backbone in MOBILENETS:  # one size, built with depth's default
        return {'backbone': backbone, 'depth': DEFAULT_DEPTH}
    depth = next((d for d, (block, counts) in RESNET_SPECS.items()
                  if counts == blocks and (block is BottleneckBlock) == bottleneck), None)
    return {'backbone': backbone, 'depth': depth}


# mmaction2's input normaliser (ActionDataPreprocessor: pixels 0-255 minus mean, over std),
# kept in the files of versions that saved its buffers. A file whose normaliser is the one
# our DATA.mean / DATA.std default computes (ImageNet's, as every mmaction2 TSM config sets)
# loads; another one would feed the network other inputs than it was trained on.
_MM_NORMALISER = {'data_preprocessor.mean': (123.675, 116.28, 103.53),
                  'data_preprocessor.std': (58.395, 57.12, 57.375)}


def _check_normaliser(fmt, state, where):
    """The entries of mmaction2's normaliser in `state`, checked: WeightsError naming the
    values when they are not ImageNet's (the input this project feeds)."""
    found = [name for name in _MM_NORMALISER if name in state] if fmt == 'mmaction2' else []
    for name in found:
        value = np.asarray(state[name], np.float64).ravel()
        if value.shape != (3,) or not np.allclose(value, _MM_NORMALISER[name], atol=1e-3):
            raise WeightsError(
                f'{where}: {name} is {np.round(value, 3).tolist()}: these weights were trained '
                f'on input normalised otherwise than ImageNet\'s mean '
                f'{list(_MM_NORMALISER["data_preprocessor.mean"])} and std '
                f'{list(_MM_NORMALISER["data_preprocessor.std"])} (0-255), which the DATA '
                f'section feeds; they cannot be loaded')
    return found


def _rename(state, fmt, where):
    renamed, origin, unknown, ignored = {}, {}, [], []
    normaliser = _check_normaliser(fmt, state, where)
    for name, value in state.items():
        if name in normaliser:
            ignored.append(name)  # checked: the input the DATA section feeds
            continue
        if is_ignored(name):
            ignored.append(name)
            continue
        new = our_name(fmt, name)
        if new is None:
            unknown.append(name)
            continue
        if new in renamed:
            raise WeightsError(f'{where}: {origin[new]} and {name} both map to {new}')
        value = np.asarray(value)
        if fmt in TORCH_FORMATS and new == 'fc.weight' and value.ndim == 2:
            value = value.T  # torch Linear [out, in] -> paddle [in, out]
        if np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float32)
        renamed[new], origin[new] = np.ascontiguousarray(value), name
    if ignored:
        log.info('%s: ignored %d non-parameter entries (%s)', where, len(ignored),
                 ', '.join(ignored[:5]) + (', ...' if len(ignored) > 5 else ''))
    return renamed, origin, unknown


def _mismatch_error(where, fmt, missing, unexpected, mismatched, origin):
    lines = [f'{where}: {fmt} weights do not fit the model']
    if missing:
        lines.append(f'  missing in file ({len(missing)}): ' + ', '.join(missing))
    if unexpected:
        lines.append(f'  unexpected in file ({len(unexpected)}): ' + ', '.join(unexpected))
    for name, got, want in mismatched:
        src = f' (file name {origin[name]})' if origin.get(name, name) != name else ''
        lines.append(f'  shape mismatch {name}{src}: file {got} vs model {want}')
    return WeightsError('\n'.join(lines))


def convert_state(state, model, source_format=None, recorded=None, for_training=False,
                  where='weights', checked=False, quiet=False):
    """Our state dict {name: float32 array} for `model` from `state` of any layout.

    source_format: one of FORMATS, detected from the names when None. recorded: the MODEL
    settings the weights were trained with, where known (their seg_num is also the source's
    segment count: PaddleVideo shifts 1/seg_num of the channels; 8 when unknown).
    for_training: the classifier is skipped with a notice when it is absent or its class
    count differs, and settings or a shift that differ from the source's are warnings;
    otherwise all are errors. Any other missing, unexpected or mis-shaped parameter is an
    error naming them all. `where` names the file in messages. `checked`: the caller has
    compared `recorded` with the model already (weights.check_settings), so its differences
    are not reported again; `quiet`: no warning is logged (a check before the real load).
    """
    recorded = recorded or {}
    out = _SILENT if quiet else log
    lcnet_format = lcnet.layout(list(state))
    fmt = source_format or lcnet_format or detect_format(list(state))
    if fmt not in FORMATS:
        raise ValueError(f'source_format: expected one of {FORMATS}, got {fmt!r}')
    if lcnet_format:  # PP-TSMv2: its own names, and the source's shift order is ours
        renamed, origin, unknown = (_rename(state, fmt, where) if fmt == 'native'
                                    else lcnet.rename(state, where))
        network, shift = lcnet.network(renamed), None
    else:
        missing_parts = unsupported(fmt, list(state))
        if missing_parts:
            raise WeightsError(f'{where}: {fmt} weights of a network with {missing_parts}, '
                               f'which this TSM does not have: they cannot be loaded')
        renamed, origin, unknown = _rename(state, fmt, where)
        network = _network_of(list(state), list(renamed))
        shift = source_shift(fmt, list(state), recorded.get('seg_num', 8))
    shown = {k: v for k, v in network.items() if v is not None}
    check_architecture({**recorded, **shown}, model.settings, where)
    problems = ([] if checked else settings_problems(recorded, model.settings)) + \
        (lcnet.shift_problems(model.settings, fmt, recorded.get('seg_num')) if lcnet_format
         else shift_problems(model, shift))
    refuse_or_warn(problems, for_training,
                   f'{where}: the model would not compute what these weights were trained '
                   f'to compute', 'Build the model as the weights were trained (the MODEL '
                   'section)', out, where)
    if shift and needs_swap(model, shift):
        renamed = permute_streams(renamed, model, shift.folds)
    expected = {k: list(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in renamed]
    unexpected = [k for k in renamed if k not in expected] + unknown
    mismatched = [(k, list(renamed[k].shape), expected[k]) for k in expected
                  if k in renamed and list(renamed[k].shape) != expected[k]]
    if for_training:
        fc_bad = [k for k in missing if k in CLASSIFIER]
        fc_bad += [m for m in mismatched if m[0] in CLASSIFIER]
        if fc_bad:
            out.warning('%s: classifier not loaded (%s); it keeps its initial values',
                        where, '; '.join(f'{n}: file {g} vs model {w}'
                                         for n, g, w in mismatched if n in CLASSIFIER)
                        or 'absent from the file')
            missing = [k for k in missing if k not in CLASSIFIER]
            mismatched = [m for m in mismatched if m[0] not in CLASSIFIER]
            renamed = {k: v for k, v in renamed.items() if k not in CLASSIFIER}
    if missing or unexpected or mismatched:
        raise _mismatch_error(where, fmt, missing, unexpected, mismatched, origin)
    return renamed


def convert_file(path, model, source_format=None, recorded=None, for_training=False,
                 checked=False, quiet=False):
    """convert_state on the weight file (or fluid folder / tarball) at `path`."""
    return convert_state(read_state(path), model, source_format, recorded, for_training,
                         where=path, checked=checked, quiet=quiet)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Write any supported TSM / ResNet weight file as our weights folder '
                    '(model.pdparams and the MODEL settings in state.json).')
    parser.add_argument('src', help='.pdparams, .pth, fluid .tar.gz or folder')
    parser.add_argument('dst', help='output folder')
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--backbone', default='resnet',
                        help="resnet, resnet_vd for PP-TSM weights, mobilenet_v2, or "
                             "mobilenet_v2_pp for PP-TSM's MobileNetV2")
    parser.add_argument('--shift_mode', choices=SHIFT_MODES, default='bidirectional',
                        help="online for the original online demo's gesture model")
    parser.add_argument('--num_classes', type=int, default=400)
    parser.add_argument('--seg_num', type=int, default=8,
                        help="the source's segments (PaddleVideo shifts 1/seg_num)")
    parser.add_argument('--shift_ratio', type=float, default=0.125)
    parser.add_argument('--shift_every', type=int, default=1,
                        help='shift blocks 0, k, 2k... of each stage (2 for the original R101)')
    parser.add_argument('--format', choices=FORMATS, default=None,
                        help='source layout (default: detected from the names)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s',
                        force=True)  # paddle installs its own root handler at import
    try:
        model = TSM(num_classes=args.num_classes, seg_num=args.seg_num, depth=args.depth,
                    shift_mode=args.shift_mode, shift_ratio=args.shift_ratio,
                    shift_every=args.shift_every, backbone=args.backbone)
    except ValueError as e:  # the model's own check, which names the argument
        parser.error(f'--{e}')
    try:
        state = convert_file(args.src, model, args.format, {'seg_num': args.seg_num})
        model.set_state_dict(state)
        write_weights(args.dst, model, {'converted_from': args.src})
    except (WeightsError, OSError) as e:  # a file's problem, named in one message
        log.error('%s', e)
        return 1
    log.info('wrote %s (%d parameters)', args.dst, len(state))
    return 0


if __name__ == '__main__':
    sys.exit(main())
