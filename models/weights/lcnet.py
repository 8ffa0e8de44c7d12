"""PP-LCNetV2 weights (PP-TSMv2, backbone 'pplcnet_v2'): PaddleVideo's and PaddleClas's
layout onto ours.

PaddleVideo saves PP-TSMv2 as backbone.stem.0.conv.weight, backbone.stages.2.0.dw_conv_list.0
.bn._mean, backbone.fc.weight (Recognizer2D), or inside a distillation file as
Student.0.stem... beside the teacher's Teacher.0.* (RecognizerDistillation keeps each model
as an nn.Sequential of backbone and head); PaddleClas's ImageNet PPLCNetV2 has the same names
without a prefix. Ours (models/pplcnet_v2.py) differ in three ways:
- the stem is stem_blocks.*;
- a re-parameterisable block has no plain `dw_conv`: the source builds one beside the
  branches and uses it only after rep() overwrites it, so its saved values are its
  initialisation and are dropped here (the branches, which it would be folded from, are
  loaded);
- the source's dropout before the classifier scales by 1 - 0.2 in evaluation
  ('downscale_in_infer'), ours by 1 / (1 - p) in training: fc.weight is multiplied by 0.8, so
  the converted network computes what the source computes, in evaluation and training alike.
The shift needs nothing: ours moves the channels as the source's paddle temporal_shift.
"""
import logging

import numpy as np

from .errors import WeightsError
from .names import is_ignored

log = logging.getLogger(__name__)

BACKBONE = 'pplcnet_v2'
_SOURCE_STEM = 'stem.0.conv.weight'
_OUR_STEM = 'stem_blocks.0.conv.weight'
SOURCE_DROPOUT = 0.2  # PPTSM_v2's and PPLCNetV2_base's dropout_prob, 'downscale_in_infer'


def layout(names):
    """'native' or 'paddlevideo' when `names` are a PP-LCNetV2's, else None."""
    if _OUR_STEM in names:
        return 'native'
    if any(n.endswith(_SOURCE_STEM) for n in names):
        return 'paddlevideo'
    return None


def _prefix(names, where):
    """The prefix of the PP-LCNetV2 in a PaddleVideo file: the student's where a
    distillation file holds two."""
    prefixes = sorted(n[:-len(_SOURCE_STEM)] for n in names if n.endswith(_SOURCE_STEM))
    if len(prefixes) > 1:
        students = [p for p in prefixes if p.startswith('Student.')]
        if len(students) != 1:
            raise WeightsError(f'{where}: holds {len(prefixes)} PP-LCNetV2 networks '
                               f'({", ".join(prefixes)}) and none is the Student of a '
                               f'distillation: pass one of them in a file of its own')
        return students[0]
    return prefixes[0]


def network(names):
    """{'backbone', 'depth', 'temporal_attention'} of the PP-LCNetV2 whose parameters (in
    our names) are `names`: the settings that change its parameters."""
    return {'backbone': BACKBONE, 'depth': None,
            'temporal_attention': 'global_attention.fc.weight' in names}


def shift_problems(settings, fmt, seg_num=None):
    """Why a model of `settings` would not shift as the PaddleVideo network of `seg_num`
    segments (the model's when unknown) did: PPTSM_v2 moves 1/seg_num of the channels each
    way, whatever else its config says."""
    if fmt != 'paddlevideo':
        return []
    seg_num = seg_num or settings['seg_num']
    if settings['shift_mode'] == 'none':
        return [f'the source shifts (paddle temporal_shift, ratio 1/{seg_num}) but the model '
                f'has shift_mode=none']
    if settings['shift_ratio'] != 1.0 / seg_num:
        return [f'MODEL.shift_ratio: model {settings["shift_ratio"]!r}, the source shifts '
                f'1/seg_num = {1.0 / seg_num!r}']
    return []


def rename(state, where):
    """(our state {name: float32 array}, {our name: file name}, unknown file names) of a
    PP-LCNetV2 file in PaddleVideo's layout (see the module doc); entries that are not
    parameters of any network (names.is_ignored) are dropped, as in the other layouts."""
    prefix = _prefix(list(state), where)
    renamed, origin, unknown, others = {}, {}, [], []
    for name, value in state.items():
        if is_ignored(name):
            continue
        if not name.startswith(prefix):
            # the teacher of a distillation file is another network
            (others if name.startswith('Teacher.') else unknown).append(name)
            continue
        ours = name[len(prefix):]
        if ours.startswith('stem.'):
            ours = 'stem_blocks.' + ours[len('stem.'):]
        block, _, param = ours.rpartition('.dw_conv.')
        if param in ('weight', 'bias') and f'{prefix}{block}.dw_conv_list.0.conv.weight' in state:
            continue  # the plain conv beside the branches: unused before rep()
        value = np.asarray(value, np.float32)
        if ours == 'fc.weight':
            value = value * np.float32(1 - SOURCE_DROPOUT)
        renamed[ours], origin[ours] = np.ascontiguousarray(value), name
    if others:
        log.info('%s: read the student (%s*); left out the teacher (%d entries)', where,
                 prefix, len(others))
    return renamed, origin, unknown
