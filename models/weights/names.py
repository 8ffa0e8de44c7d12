"""Parameter names of each supported layout, mapped onto ours (paddle.vision ResNet names).

Layouts (`source_format` values):
  native       this project's checkpoints and paddle.vision ResNets: conv1.weight, bn1._mean,
               layer1.0.conv1.weight, layer1.0.downsample.0.weight, fc.weight [in, out]
  paddlevideo  PaddleVideo ResNetTSM + TSMHead: backbone.conv._conv.weight,
               backbone.res2a.conv0._batch_norm._mean, backbone.res2a.short._conv.weight,
               head.fc.weight (ImageNet backbones: the same names without 'backbone.', and
               a PaddleClas classifier out.weight); PP-TSM's ResNetTweaksTSM (ResNet-vd) +
               ppTSMHead: backbone.conv1_1._conv.weight .. conv1_3 (ours conv1_1 / bn1_1 ..),
               backbone.bb_0_0.conv0._conv.weight (stage 0, block 0: ours layer1.0.conv1),
               backbone.bb_1_0.short._batch_norm._mean (ours layer2.0.downsample.1._mean);
               PP-TSM's MobileNetV2: backbone.conv1._conv.weight (ours conv1),
               backbone.conv3.conv3_2._expand_conv._conv.weight (group 1, its block 2:
               ours layers.2.conv1), backbone.conv9 (ours conv_last), backbone.out.weight
  fluid        old Paddle video zoo (fluid ParamAttr names): conv1_weights, bn_conv1_scale,
               res2a_branch2a_weights, bn2a_branch2a_variance, res2a_branch1_weights, fc_0.w_0
  mit          original PyTorch TSM: module.base_model.layer1.0.conv1.net.weight,
               module.base_model.bn1.running_var, module.new_fc.weight [out, in]; its
               MobileNetV2 (archs/mobilenet_v2.py): module.base_model.features.0.0.weight
               (the stem, ours conv1), features.3.conv.0.net.weight (block 2's expansion,
               ours layers.2.conv1; conv.3 the depthwise conv2, conv.6 the projection conv3,
               conv.1/.4/.7 their BNs; block 0 has no expansion: its conv.0 is the depthwise
               conv), features.18.0 (ours conv_last); and its online demo's
               mobilenet_v2_tsm.py: the same features.* without prefix, classifier.weight
  torchvision  torchvision ResNets: conv1.weight, bn1.running_mean, fc.weight [out, in]
  mmaction2    mmaction2 ResNetTSM + TSMHead (mmcv ConvModules, conv then bn):
               backbone.conv1.conv.weight, backbone.conv1.bn.running_var,
               backbone.layer1.0.conv1.conv.net.weight (a shifted block: TemporalShift
               wraps conv1's conv), backbone.layer1.0.downsample.bn.weight,
               cls_head.fc_cls.weight [out, in]
"""
import re

from ..mobilenet_v2 import SETTINGS as MV2_SETTINGS

FORMATS = ('native', 'paddlevideo', 'fluid', 'mit', 'torchvision', 'mmaction2')
# Layouts written by PyTorch: Linear weights are [out, in] there, [in, out] in Paddle.
TORCH_FORMATS = ('mit', 'torchvision', 'mmaction2')

# res{stage}{letter}{number}: stages 2..5 are layer1..4; block 0 is 'a', block i is
# chr(97 + i), except ResNet-101/152's third stage which counts 'b1', 'b2', ...
_BLOCK = r'res(?P<stage>[2-5])(?P<letter>[a-z])(?P<num>\d*)'
_PV_ROLES = {'conv0': 1, 'conv1': 2, 'conv2': 3, 'short': 'down'}
_FLUID_ROLES = {'branch2a': 1, 'branch2b': 2, 'branch2c': 3, 'branch1': 'down'}
_FLUID_BN = {'scale': 'weight', 'offset': 'bias', 'mean': '_mean', 'variance': '_variance'}
_TORCH_BN = {'running_mean': '_mean', 'running_var': '_variance'}
# mmaction2: a ConvModule <layer>.conv / <layer>.bn; in a block, convN.bn is our bnN and
# downsample.conv / .bn are downsample.0 / .1; the stem's conv1.bn is our bn1.
_MM_LAYER = re.compile(r'^(?P<block>layer[1-4]\.\d+\.)?(?P<layer>conv[123]|downsample)'
                       r'\.(?P<part>conv|bn)\.(?:net\.)?(?P<param>\w+)$')
# Parts of mmaction2 TSMs this network does not have, and how their names show them.
_MM_UNSUPPORTED = (
    (re.compile(r'\.non_local_block\.'), 'non-local blocks (the -nl- configs)'),
    (re.compile(r'^backbone\.layer2\.net\.'), 'temporal pooling (temporal_pool=True)'),
    (re.compile(r'^backbone\.layer\d\.\d+\.net\.'),
     "a shift of the whole block (shift_place='block')"),
)

# PP-TSM names its blocks bb_{stage 0..3}_{index} (PaddleClas's ResNet-vd names).
_PV_BLOCK = rf'(?:{_BLOCK}|bb_(?P<bb_stage>[0-3])_(?P<bb_index>\d+))'
_PV_CONV = re.compile(rf'^{_PV_BLOCK}\.(?P<role>conv[012]|short)\._conv\.weight$')
_PV_BN = re.compile(rf'^{_PV_BLOCK}\.(?P<role>conv[012]|short)\._batch_norm\.'
                    r'(?P<param>weight|bias|_mean|_variance)$')
_PV_VD_STEM = re.compile(r'^conv1_(?P<k>[123])\.(?:_conv\.(?P<conv>weight)|'
                         r'_batch_norm\.(?P<param>weight|bias|_mean|_variance))$')
# A ResNet-vd stem conv in any layout (ours: conv1_1.weight; PaddleVideo's:
# backbone.conv1_1._conv.weight): its presence tells a ResNet-vd network.
_VD_STEM = re.compile(r'(^|\.)conv1_1\.')
_FLUID_CONV = re.compile(rf'^{_BLOCK}_(?P<role>branch2[abc]|branch1)_weights$')
_FLUID_BN_RE = re.compile(r'^bn(?P<stage>[2-5])(?P<letter>[a-z])(?P<num>\d*)_'
                          r'(?P<role>branch2[abc]|branch1)_(?P<param>scale|offset|mean|variance)$')
# The original code's MobileNetV2: features.0 the stem, features.1..17 the blocks,
# features.18 the last 1x1 conv; within a block, conv.{index} -> our layer.
_MV2 = re.compile(r'^features\.(?P<index>\d+)\.(?:conv\.)?(?P<layer>\d)\.(?:net\.)?(?P<param>\w+)$')
_MV2_BLOCKS = sum(n for _, _, n, _ in MV2_SETTINGS)
_MV2_ROLES = {0: 'conv1', 1: 'bn1', 3: 'conv2', 4: 'bn2', 6: 'conv3', 7: 'bn3'}
_MV2_ROLES_FIRST = {0: 'conv2', 1: 'bn2', 3: 'conv3', 4: 'bn3'}  # no expansion in block 0
# A MobileNetV2 in the original's layout or ours.
_MV2_NAMES = re.compile(r'(^|\.)(features\.\d+\.conv\.\d|layers\.\d+\.conv3\.)')
# PaddleVideo's PP-TSM MobileNetV2 (PaddleClas's): conv1 the stem, conv2..conv8 the groups
# of SETTINGS (their first block _first_block, then conv{g}_2, conv{g}_3 ...), conv9 the
# last 1x1 conv, out the classifier; each block's _expand_conv, _bottleneck_conv and
# _linear_conv are ours conv1, conv2, conv3.
_PV_MV2 = re.compile(r'^conv(?P<group>[2-8])\.(?:_first_block|conv(?P=group)_(?P<j>\d+))\.'
                     r'_(?P<role>expand|bottleneck|linear)_conv\.'
                     r'(?:_conv\.weight|_batch_norm\.(?P<param>\w+))$')
_PV_MV2_ROLES = {'expand': 1, 'bottleneck': 2, 'linear': 3}
_PV_MV2_ENDS = {'conv1': ('conv1', 'bn1'), 'conv9': ('conv_last', 'bn_last')}
# A MobileNetV2 whose first block expands: PaddleClas's layout, or ours of it.
_MV2_PP_NAMES = re.compile(r'(^|\.)(conv2\._first_block\._expand_conv\.|layers\.0\.conv1\.)')

# Entries that are not model parameters: BN step counters, optimizer accumulators.
_IGNORED = re.compile(r'(num_batches_tracked$|_velocity_\d+$|_moment\d_\d+$|'
                      r'_pow_acc_\d+$|^learning_rate_\d+$|^@LR_DECAY_COUNTER@$)')


def detect_format(names):
    """Which layout (one of FORMATS) a set of parameter names comes from."""
    names = list(names)
    bare = [n[len('module.'):] if n.startswith('module.') else n for n in names]
    if any(n.startswith('base_model.') for n in bare):
        return 'mit'
    if 'classifier.weight' in bare and any(n.startswith('features.') for n in bare):
        return 'mit'  # the online demo's MobileNetV2, saved without a wrapper
    if 'cls_head.fc_cls.weight' in names or any(
            n.startswith('backbone.') and n.endswith(('.conv.weight', '.bn.running_var'))
            for n in names):
        return 'mmaction2'
    if any(n.endswith('._conv.weight') or '._batch_norm.' in n for n in names):
        return 'paddlevideo'
    if 'conv1_weights' in names or any(_FLUID_CONV.match(n) for n in names):
        return 'fluid'
    if any(n.endswith(('.running_mean', '.running_var')) for n in bare):
        return 'torchvision'
    if 'conv1.weight' in names and any(n.endswith('._mean') for n in names):
        return 'native'
    shown = ', '.join(names[:12]) + (', ...' if len(names) > 12 else '')
    raise ValueError(f'unrecognised weight layout ({len(names)} parameters: {shown}); '
                     f'expected one of {FORMATS}, see models/formats/names.py')


def source_backbone(names):
    """'mobilenet_v2_pp', 'mobilenet_v2' or 'resnet_vd' when the parameter names hold such
    a network's layers, else 'resnet'."""
    if any(_MV2_PP_NAMES.search(n) for n in names):
        return 'mobilenet_v2_pp'
    if any(_MV2_NAMES.search(n) for n in names):
        return 'mobilenet_v2'
    return 'resnet_vd' if any(_VD_STEM.search(n) for n in names) else 'resnet'


def unsupported(source_format, names):
    """What a network of `source_format` with parameters `names` has that this network does
    not ('' when nothing): its weights cannot be loaded whatever the settings."""
    if source_format != 'mmaction2':
        return ''
    found = [about for pattern, about in _MM_UNSUPPORTED
             if any(pattern.search(n) for n in names)]
    return ', '.join(found)


def is_ignored(name):
    """True for saved entries that are not parameters of any network (counters, optimizer
    state); they are dropped rather than reported as unexpected."""
    return bool(_IGNORED.search(name))


def _block_prefix(m):
    if m.groupdict().get('bb_stage') is not None:
        return f"layer{int(m['bb_stage']) + 1}.{int(m['bb_index'])}."
    index = int(m['num']) if m['num'] else ord(m['letter']) - ord('a')
    return f"layer{int(m['stage']) - 1}.{index}."


def _conv_param(role, param):
    """Our name of a block conv/BN parameter: role 1..3 or 'down'; param 'weight' of the
    conv when bn is False, else the BN parameter."""
    if role == 'down':
        return 'downsample.0.weight' if param is None else f'downsample.1.{param}'
    return f'conv{role}.weight' if param is None else f'bn{role}.{param}'


def _paddlevideo(name):
    for prefix in ('backbone.', 'head.'):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name in ('fc.weight', 'fc.bias', 'out.weight', 'out.bias'):
        return 'fc.' + name.split('.')[1]
    if name == 'conv._conv.weight':
        return 'conv1.weight'
    mobilenet = _paddlevideo_mobilenet(name)
    if mobilenet:
        return mobilenet
    if name.startswith('conv._batch_norm.'):
        return 'bn1.' + name[len('conv._batch_norm.'):]
    m = _PV_VD_STEM.match(name)
    if m:
        return f"conv1_{m['k']}.weight" if m['conv'] else f"bn1_{m['k']}.{m['param']}"
    m = _PV_CONV.match(name) or _PV_BN.match(name)
    if m is None:
        return None
    param = m.groupdict().get('param')
    return _block_prefix(m) + _conv_param(_PV_ROLES[m['role']], param)


def _paddlevideo_mobilenet(name):
    """Our name of a parameter of PP-TSM's MobileNetV2 (without 'backbone.'), or None."""
    head, _, rest = name.partition('.')
    if head in _PV_MV2_ENDS:
        conv, bn = _PV_MV2_ENDS[head]
        if rest == '_conv.weight':
            return f'{conv}.weight'
        return f'{bn}.{rest[len("_batch_norm."):]}' if rest.startswith('_batch_norm.') else None
    m = _PV_MV2.match(name)
    if m is None:
        return None
    group = int(m['group']) - 2
    index = sum(n for _, _, n, _ in MV2_SETTINGS[:group]) + (int(m['j']) - 1 if m['j'] else 0)
    role = _PV_MV2_ROLES[m['role']]
    param = m['param']
    return f'layers.{index}.' + (f'conv{role}.weight' if param is None else f'bn{role}.{param}')


def _fluid(name):
    if name in ('fc_0.w_0', 'fc_0.b_0'):
        return 'fc.weight' if name.endswith('w_0') else 'fc.bias'
    if name == 'conv1_weights':
        return 'conv1.weight'
    if name.startswith('bn_conv1_') and name[len('bn_conv1_'):] in _FLUID_BN:
        return 'bn1.' + _FLUID_BN[name[len('bn_conv1_'):]]
    m = _FLUID_CONV.match(name)
    if m:
        return _block_prefix(m) + _conv_param(_FLUID_ROLES[m['role']], None)
    m = _FLUID_BN_RE.match(name)
    if m:
        return _block_prefix(m) + _conv_param(_FLUID_ROLES[m['role']], _FLUID_BN[m['param']])
    return None


def _torch(name):
    if name.startswith('module.'):
        name = name[len('module.'):]
    if name.startswith('new_fc.'):
        name = 'fc.' + name[len('new_fc.'):]
    if name.startswith('base_model.'):
        name = name[len('base_model.'):]
    if name.startswith('classifier.'):  # the online demo's MobileNetV2
        name = 'fc.' + name[len('classifier.'):]
    if name.startswith('features.'):
        name = _mobilenet(name)
        if name is None:
            return None
    # The original TSM wraps each shifted block's conv1 as TemporalShift(net=conv1).
    name = name.replace('.conv1.net.', '.conv1.')
    head, _, last = name.rpartition('.')
    return f'{head}.{_TORCH_BN.get(last, last)}' if head else name


def _mobilenet(name):
    """Our name of a parameter of the original MobileNetV2 (features.*, torch BN names
    left for the caller), or None."""
    m = _MV2.match(name)
    if m is None:
        return None
    index, layer, param = int(m['index']), int(m['layer']), m['param']
    if index == 0:
        our = {0: 'conv1', 1: 'bn1'}.get(layer)
    elif index == _MV2_BLOCKS + 1:
        our = {0: 'conv_last', 1: 'bn_last'}.get(layer)
    elif index <= _MV2_BLOCKS:
        role = (_MV2_ROLES_FIRST if index == 1 else _MV2_ROLES).get(layer)
        our = role and f'layers.{index - 1}.{role}'
    else:
        our = None
    return our and f'{our}.{param}'


def _mmaction2(name):
    if name.startswith('cls_head.fc_cls.'):
        return 'fc.' + name[len('cls_head.fc_cls.'):]
    if not name.startswith('backbone.'):
        return None
    m = _MM_LAYER.match(name[len('backbone.'):])
    if m is None:
        return None
    block, layer, param = m['block'] or '', m['layer'], _TORCH_BN.get(m['param'], m['param'])
    if layer == 'downsample':
        return f"{block}downsample.{0 if m['part'] == 'conv' else 1}.{param}"
    if not block and layer != 'conv1':
        return None
    return f"{block}{layer if m['part'] == 'conv' else 'bn' + layer[-1]}.{param}"


def our_name(source_format, name):
    """Our parameter name for `name` of `source_format`, or None when it has no counterpart."""
    if source_format == 'native':
        return name
    if source_format == 'paddlevideo':
        return _paddlevideo(name)
    if source_format == 'fluid':
        return _fluid(name)
    if source_format == 'mmaction2':
        return _mmaction2(name)
    if source_format in TORCH_FORMATS:
        return _torch(name)
    raise ValueError(f'source_format: expected one of {FORMATS}, got {source_format!r}')
