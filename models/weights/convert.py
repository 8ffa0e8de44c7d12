"""Convert published TSM / ResNet weights of any supported layout into our state dict.

    python -m models.convert SRC DST [--depth 50 --num_classes 400 --seg_num 8]

Names are mapped by models/formats/names.py. PaddleVideo and the old Paddle zoo shift
with paddle's temporal_shift, whose first fold of channels comes from frame t-1 and the
second from t+1; our shift (and the original PyTorch one) takes the first fold from t+1
and the second from t-1. For a stream x of C channels and the permutation P that swaps
those two folds, shift_ours(P x) = P shift_paddle(x). So every residual stream (the stem
output and each stage's output; a block's input is the stream before it) is stored
permuted: the convs, BNs and downsample that write a stream get their output channels
permuted, the first conv of each block, the downsample and fc get their input channels
permuted. Identity paths, ReLU, max/avg pooling commute with P, so the converted network
computes exactly what the source computed.
"""
import argparse
import logging

import numpy as np

from .formats.names import (FORMATS, TORCH_FORMATS, detect_format, is_ignored,
                            our_name)
from .formats.streams import (needs_swap, permute_streams, shift_problems,
                              source_shift)

__all__ = ['convert_state', 'convert_file', 'detect_format', 'FORMATS']

log = logging.getLogger(__name__)

CLASSIFIER = ('fc.weight', 'fc.bias')


def _rename(state, fmt, where):
    renamed, origin, unknown, ignored = {}, {}, [], []
    for name, value in state.items():
        if is_ignored(name):
            ignored.append(name)
            continue
        new = our_name(fmt, name)
        if new is None:
            unknown.append(name)
            continue
        if new in renamed:
            raise ValueError(f'{where}: {origin[new]} and {name} both map to {new}')
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
    return ValueError('\n'.join(lines))


def convert_state(state, model, source_format=None, seg_num=8, for_training=False,
                  where='weights'):
    """Our state dict {name: float32 array} for `model` from `state` of any layout.

    source_format: one of FORMATS, detected from the names when None. seg_num: the
    source's segment count (PaddleVideo shifts 1/seg_num of the channels).
    for_training: the classifier is skipped with a notice when it is absent or its class
    count differs, and a shift that differs from the source's is a warning; otherwise both
    are errors. Any other missing, unexpected or mis-shaped parameter is an error naming
    them all. `where` names the file in messages.
    """
    fmt = source_format or detect_format(list(state))
    if fmt not in FORMATS:
        raise ValueError(f'source_format: expected one of {FORMATS}, got {fmt!r}')
    renamed, origin, unknown = _rename(state, fmt, where)
    shift = source_shift(fmt, list(state), seg_num)
    problems = shift_problems(model, shift)
    if problems and not for_training:
        raise ValueError(f'{where}: the model would not compute what the {fmt} source '
                         f'computed: ' + '; '.join(problems))
    for problem in problems:
        log.warning('%s: %s', where, problem)
    if needs_swap(model, shift):
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
            log.warning('%s: classifier not loaded (%s); it keeps its initial values',
                        where, '; '.join(f'{n}: file {g} vs model {w}'
                                         for n, g, w in mismatched if n in CLASSIFIER)
                        or 'absent from the file')
            missing = [k for k in missing if k not in CLASSIFIER]
            mismatched = [m for m in mismatched if m[0] not in CLASSIFIER]
            renamed = {k: v for k, v in renamed.items() if k not in CLASSIFIER}
    if missing or unexpected or mismatched:
        raise _mismatch_error(where, fmt, missing, unexpected, mismatched, origin)
    return renamed


def convert_file(path, model, source_format=None, seg_num=8, for_training=False):
    """convert_state on the weight file (or fluid folder / tarball) at `path`."""
    from .formats.files import read_state
    return convert_state(read_state(path), model, source_format, seg_num, for_training,
                         where=path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Write any supported TSM / ResNet weight file as our .pdparams.')
    parser.add_argument('src', help='.pdparams, .pth, fluid .tar.gz or folder')
    parser.add_argument('dst', help='output .pdparams')
    parser.add_argument('--depth', type=int, default=50)
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
    import paddle
    from .tsm import TSM
    model = TSM(num_classes=args.num_classes, seg_num=args.seg_num, depth=args.depth,
                shift_ratio=args.shift_ratio, shift_every=args.shift_every)
    state = convert_file(args.src, model, args.format, args.seg_num)
    model.set_state_dict(state)
    paddle.save(model.state_dict(), args.dst)
    log.info('wrote %s (%d parameters)', args.dst, len(state))


if __name__ == '__main__':
    main()
