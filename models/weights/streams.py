"""Which channels each layout shifts, and the channel permutation between conventions.

paddle's temporal_shift (PaddleVideo, old zoo) fills the first fold of a stream's channels
from frame t-1 and the second from t+1; our shift and the original PyTorch one fill the
first from t+1 and the second from t-1. With P swapping the two folds of a C-channel
stream, shift_ours(P x) = P shift_paddle(x).
"""
import collections

import numpy as np

from ..resnet import is_shifted
from ..tsm import MOBILENETS, STEMS
from .names import source_backbone

# How a source network shifted. convention: 'paddle' (fold 0 from t-1), 'ours' (fold 0
# from t+1), 'online' (one fold, from t-1) or 'none'; folds(C) -> widths of the first and
# second shifted folds of a C-channel stream; blocks: prefixes of the shifted blocks (None:
# every block).
SourceShift = collections.namedtuple('SourceShift', 'convention folds blocks about')
# Index of the fold taken from frame t-1, per convention / our shift mode.
# ('online': a source or a model whose one fold comes from t-1.)
_PREVIOUS_FOLD = {'paddle': 0, 'ours': 1, 'bidirectional': 1, 'online': 0}


def source_shift(source_format, names, seg_num=8):
    """How the network that produced weights of `source_format` shifted; None when the
    names do not tell (native and torchvision layouts, e.g. ImageNet ResNets)."""
    if source_format == 'paddlevideo':  # PaddleVideo ties shift_ratio to 1 / num_seg
        r = 1.0 / seg_num
        # PP-TSM's MobileNetV2 shifts the blocks that add their input (its ifshortcut)
        blocks = set(_MV2_SHIFTED) if source_backbone(names) in MOBILENETS else None
        return SourceShift('paddle', lambda c: (int(c * r), int(2 * c * r) - int(c * r)),
                           blocks, f'paddle temporal_shift, ratio 1/{seg_num}')
    if source_format == 'fluid':  # tsm_res_model.py hard-codes 1/8
        return SourceShift('paddle', lambda c: (int(c / 8), int(2 * c / 8) - int(c / 8)),
                           None, 'fluid temporal_shift, ratio 1/8')
    if source_format == 'mit':
        bare = [_bare_mit(n) for n in names]
        if 'classifier.weight' in bare:
            # online_demo/mobilenet_v2_tsm.py: its InvertedResidualWithShift blocks (by
            # their place among the 17) take the first 1/8 channels from the previous frame
            return SourceShift('online', lambda c: (c // 8,), set(_MV2_SHIFTED),
                               "the online demo's shift, 1/8 from the previous frame")
        if any(n.startswith('features.') for n in bare):  # archs/mobilenet_v2.py
            return _wrapped_conv1_shift(_mobilenet_blocks(bare), 'conv1.',
                                        'original TSM shift, n_div 8')
        return _wrapped_conv1_shift(bare, 'conv1.net.', 'original TSM shift, n_div 8')
    if source_format == 'mmaction2':  # its TemporalShift is the original's, shift_div 8
        bare = (n[len('backbone.'):] for n in names if n.startswith('backbone.'))
        return _wrapped_conv1_shift(bare, 'conv1.conv.net.', 'mmaction2 TemporalShift, '
                                    'shift_div 8')
    return None


def _wrapped_conv1_shift(names, marker, about):
    """The shift of a source whose shifted blocks name their first conv with `marker`
    (a TemporalShift wrapping it); fold 0 comes from frame t+1, fold 1 from t-1."""
    blocks = {n.split(marker)[0] for n in names if marker in n}
    if not blocks:
        return SourceShift('none', None, None, 'no shift')
    return SourceShift('ours', lambda c: (c // 8, c // 8), blocks, about)


# The MobileNetV2 blocks that expand and add their input, as our block names: the shifted
# ones of every source (online_demo/mobilenet_v2_tsm.py's shift_block_idx)
_MV2_SHIFTED = tuple(f'layers.{i}.' for i in (2, 4, 5, 7, 8, 9, 11, 12, 14, 15))


def _mobilenet_blocks(bare):
    """'layers.{k}.conv1.' for each block of the original MobileNetV2 whose expansion conv a
    TemporalShift wraps (features.{k+1}.conv.0.net.*)."""
    return [f'layers.{int(n.split(".")[1]) - 1}.conv1.' for n in bare
            if n.startswith('features.') and '.conv.0.net.' in n]


def _bare_mit(name):
    name = name[len('module.'):] if name.startswith('module.') else name
    return name[len('base_model.'):] if name.startswith('base_model.') else name


def _blocks(model):
    """(parameter name prefix, block) of every residual block, in forward order."""
    return [(block.name + '.', block.layer) for block in model.blocks()]


def shift_problems(model, shift):
    """Why `model` would not compute what a source shifting as `shift` computed ([] if it
    would, or if the source's shift is unknown)."""
    if shift is None:
        return []
    blocks = _blocks(model)
    shifted = [(p, b) for p, b in blocks if b.shift is not None]
    if shift.convention == 'none':
        return [f'the source does not shift; the model shifts {len(shifted)} blocks'
                ] if shifted else []
    if not shifted:
        return [f'the source shifts ({shift.about}) but the model has shift_mode=none']
    problems = []
    modes = sorted({b.shift.mode for _, b in shifted})
    online = shift.convention == 'online'
    if modes != ['online' if online else 'bidirectional']:
        how = 'from the previous frame only' if online else 'both ways'
        problems.append(f'the source shifts {how}; the model has shift_mode={modes}')
    if {b.shift_place for _, b in blocks} != {'residual'}:
        problems.append('the source shifts the residual branch only; the model has '
                        'shift_place=inplace')
    prefixes = [p for p, _ in blocks]
    theirs = set(prefixes) if shift.blocks is None else set(shift.blocks)
    ours = {p for p, _ in shifted}
    # A source block the model lacks means another depth, which the caller's name check
    # reports better than a count of shifted blocks would.
    if theirs != ours and theirs <= set(prefixes):
        problems.append(_blocks_problem(model, theirs, ours))
    for prefix, block in shifted:
        c = block.conv1.weight.shape[1]
        f = int(c * block.shift.shift_ratio)
        ours = (f,) if block.shift.mode == 'online' else (f, f)
        if ours != shift.folds(c):
            problems.append(f'{prefix[:-1]}: the source shifts folds {shift.folds(c)} of {c} '
                            f'channels, the model {ours} (shift_ratio '
                            f'{block.shift.shift_ratio})')
            break
    return problems


def _blocks_problem(model, theirs, ours):
    """The source shifts the blocks `theirs`, the model `ours` (parameter prefixes): how
    they differ, and the shift_every that would make them agree, if one does."""
    blocks = model.blocks()
    prefixes = [b.name + '.' for b in blocks]
    msg = (f'the source shifts {len(theirs)} of the {len(prefixes)} blocks, the model '
           f'{len(ours)}')
    for every in range(1, len(prefixes) + 1):
        if theirs == {b.name + '.' for b in blocks if is_shifted(b.index, every)}:
            return msg + f': set MODEL.shift_every: {every}'

    def listed(names):
        names = [p[:-1] for p in prefixes if p in names]
        return ', '.join(names[:4]) + (', ...' if len(names) > 4 else '')
    parts = [f'only the source shifts {listed(theirs - ours)}' if theirs - ours else '',
             f'only the model shifts {listed(ours - theirs)}' if ours - theirs else '']
    return msg + ' (' + '; '.join(p for p in parts if p) + ')'


def _fold_swap(c, folds):
    first, second = folds
    idx = np.arange(c)
    return np.concatenate([idx[first:first + second], idx[:first], idx[first + second:]])


_BN = ('weight', 'bias', '_mean', '_variance')


def _stream_params(model):
    """([(name, axis, stream)], {stream: width}): every parameter axis that indexes the
    channels of a residual stream, named 'stem' or 'layer1'..'layer4' (a stage's output)."""
    if model.backbone in MOBILENETS:
        return _mobilenet_stream_params(model)
    bn = _BN
    # The stem's last conv and BN write the first stream; the convs before them (ResNet-vd)
    # feed only the stem, whose channels the shift never sees.
    conv, norm = STEMS[model.settings['backbone']][-1][:2]
    out = [(f'{conv}.weight', 0, 'stem')] + [(f'{norm}.{p}', 0, 'stem') for p in bn]
    widths = {'stem': getattr(model, conv).weight.shape[0]}
    previous = 'stem'
    for prefix, block in _blocks(model):
        stream = prefix.split('.')[0]
        last = 'conv3' if hasattr(block, 'conv3') else 'conv2'
        widths[stream] = getattr(block, last).weight.shape[0]
        out.append((f'{prefix}conv1.weight', 1, previous))
        out.append((f'{prefix}{last}.weight', 0, stream))
        out += [(f'{prefix}bn{last[-1]}.{p}', 0, stream) for p in bn]
        if block.downsample is not None:
            out += [(f'{prefix}downsample.0.weight', 0, stream),
                    (f'{prefix}downsample.0.weight', 1, previous)]
            out += [(f'{prefix}downsample.1.{p}', 0, stream) for p in bn]
        previous = stream
    out.append(('fc.weight', 0, previous))  # a paddle Linear weight is [in, out]
    return out, widths


def _mobilenet_stream_params(model):
    """_stream_params of a MobileNetV2: a stream begins at each block that does not add
    its input (named by it) and runs through the blocks that do; conv1 of the next block
    (or conv_last) reads it. The stem's stream, which no block shifts, is left as it is."""
    out, widths, previous = [], {}, None
    for prefix, block in _blocks(model):
        stream = previous if block.residual else prefix[:-1]
        if previous is not None and block.conv1 is not None:
            out.append((f'{prefix}conv1.weight', 1, previous))
        out.append((f'{prefix}conv3.weight', 0, stream))
        out += [(f'{prefix}bn3.{p}', 0, stream) for p in _BN]
        widths[stream] = block.conv3.weight.shape[0]
        previous = stream
    out.append(('conv_last.weight', 1, previous))
    return out, widths


def permute_streams(state, model, folds):
    """`state` with the two shifted folds (widths folds(C)) of every residual stream
    swapped; parameters absent or mis-shaped are left for the caller to report."""
    params, widths = _stream_params(model)
    perms = {s: _fold_swap(c, folds(c)) for s, c in widths.items()}
    out = dict(state)
    for name, axis, stream in params:
        value = out.get(name)
        if value is not None and value.ndim > axis and value.shape[axis] == widths[stream]:
            out[name] = np.take(value, perms[stream], axis=axis)
    return out


def needs_swap(model, shift):
    first = next((b.shift for _, b in _blocks(model) if b.shift is not None), None)
    if shift is None or shift.convention == 'none' or first is None:
        return False
    return _PREVIOUS_FOLD[shift.convention] != _PREVIOUS_FOLD[first.mode]
