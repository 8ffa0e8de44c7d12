"""Source layouts for tests/test_convert.py: random weights under each publisher's exact
parameter names, and forward passes written in the publisher's own framework and naming.

Nothing here imports models/: the names and shapes are spelled out from the publishers'
code (PaddleVideo ResNetTSM + TSMHead and PP-TSM's ResNetTweaksTSM + ppTSMHead, the old
zoo's tsm_res_model.py, the original ops/temporal_shift.py on a torchvision ResNet,
mmaction2's resnet_tsm.py + tsm_head.py), so a conversion is compared with an independent
computation.
"""
import numpy as np
import paddle
import paddle.nn.functional as F

# depth -> (bottleneck?, blocks per stage)
SPECS = {18: (False, (2, 2, 2, 2)), 50: (True, (3, 4, 6, 3)), 101: (True, (3, 4, 23, 3))}


def _blocks(depth):
    """(stage 0..3, index, in channels, planes, stride) of every residual block."""
    bottleneck, counts = SPECS[depth]
    in_ch = 64
    for stage, count in enumerate(counts):
        planes = 64 * 2 ** stage
        for i in range(count):
            yield stage, i, in_ch, planes, 2 if i == 0 and stage > 0 else 1
            in_ch = planes * 4 if bottleneck else planes


def _convs(depth, in_ch, planes, stride):
    """[(role, out, in, kernel, stride)] of one block's branch (+ 'short')."""
    bottleneck, _ = SPECS[depth]
    out_ch = planes * 4 if bottleneck else planes
    if bottleneck:
        convs = [('a', planes, in_ch, 1, 1), ('b', planes, planes, 3, stride),
                 ('c', out_ch, planes, 1, 1)]
    else:
        convs = [('a', planes, in_ch, 3, stride), ('b', out_ch, planes, 3, 1)]
    if stride != 1 or in_ch != out_ch:
        convs.append(('short', out_ch, in_ch, 1, stride))
    return convs


def _bn(rng, c):
    return {'scale': rng.uniform(0.5, 1.0, c), 'offset': rng.normal(0, 0.1, c),
            'mean': rng.normal(0, 0.1, c), 'var': rng.uniform(0.5, 1.5, c)}


def _conv(rng, out_ch, in_ch, k):
    return rng.normal(0, np.sqrt(1.0 / (in_ch * k * k)), (out_ch, in_ch, k, k))


# Parameter names per layout: conv(block, role) and bn(block, role, kind) where block is
# None for the stem and (stage, index) otherwise; kind in scale/offset/mean/var.
def _paddle_block(depth, stage, i):
    if depth >= 101 and stage == 2:
        return f'res{stage + 2}' + ('a' if i == 0 else f'b{i}')
    return f'res{stage + 2}{chr(97 + i)}'


class PaddleVideoNames:
    """ResNetTSM (backbone.*) + TSMHead (head.fc.*)."""
    role = {'a': 'conv0', 'b': 'conv1', 'c': 'conv2', 'short': 'short'}
    kind = {'scale': 'weight', 'offset': 'bias', 'mean': '_mean', 'var': '_variance'}
    fc_w, fc_b, fc_in_out = 'head.fc.weight', 'head.fc.bias', True

    def __init__(self, depth):
        self.depth = depth

    def _layer(self, block, role):
        if block is None:
            return 'backbone.conv'
        return f'backbone.{_paddle_block(self.depth, *block)}.{self.role[role]}'

    def conv(self, block, role):
        return self._layer(block, role) + '._conv.weight'

    def bn(self, block, role, kind):
        return f'{self._layer(block, role)}._batch_norm.{self.kind[kind]}'


class FluidNames(PaddleVideoNames):
    """Old zoo tsm_res_model.py ParamAttr names."""
    role = {'a': 'branch2a', 'b': 'branch2b', 'c': 'branch2c', 'short': 'branch1'}
    kind = {'scale': 'scale', 'offset': 'offset', 'mean': 'mean', 'var': 'variance'}
    fc_w, fc_b = 'fc_0.w_0', 'fc_0.b_0'

    def conv(self, block, role):
        if block is None:
            return 'conv1_weights'
        return f'{_paddle_block(self.depth, *block)}_{self.role[role]}_weights'

    def bn(self, block, role, kind):
        if block is None:
            return f'bn_conv1_{self.kind[kind]}'
        return f'bn{_paddle_block(self.depth, *block)[3:]}_{self.role[role]}_{self.kind[kind]}'


class MitNames(PaddleVideoNames):
    """Original TSM checkpoint: module.base_model.* (torchvision) + module.new_fc.*.

    make_temporal_shift ('blockres') wraps conv1 of block i of each stage, named
    conv1.net, when i % n_round == 0, n_round = 2 if layer3 has >= 23 blocks else 1.
    """
    role = {'a': '1', 'b': '2', 'c': '3'}
    kind = {'scale': 'weight', 'offset': 'bias', 'mean': 'running_mean', 'var': 'running_var'}
    fc_w, fc_b, fc_in_out = 'module.new_fc.weight', 'module.new_fc.bias', False
    prefix = 'module.base_model.'
    marker = 'conv1.net.'  # how a shifted block names its first conv

    def __init__(self, depth):
        super().__init__(depth)
        self.n_round = 2 if SPECS[depth][1][2] >= 23 else 1

    def _layer(self, block, role, conv):
        if block is None:
            return self.prefix + ('conv1' if conv else 'bn1')
        p = f'{self.prefix}layer{block[0] + 1}.{block[1]}.'
        if role == 'short':
            return p + ('downsample.0' if conv else 'downsample.1')
        shifted = (conv and role == 'a' and self.prefix.startswith('module.')
                   and block[1] % self.n_round == 0)
        return p + (f'conv{self.role[role]}' + ('.net' if shifted else '')
                    if conv else f'bn{self.role[role]}')

    def conv(self, block, role):
        return self._layer(block, role, True) + '.weight'

    def bn(self, block, role, kind):
        return f'{self._layer(block, role, False)}.{self.kind[kind]}'


class TorchvisionNames(MitNames):
    fc_w, fc_b, prefix = 'fc.weight', 'fc.bias', ''


class Mmaction2Names(MitNames):
    """mmaction2 ResNetTSM (backbone.*, each layer an mmcv ConvModule holding .conv and .bn)
    + TSMHead (cls_head.fc_cls.*). Its 'blockres' shift wraps the conv of conv1 of block i
    when i % n_round == 0 (n_round as the original's), named conv1.conv.net."""
    fc_w, fc_b = 'cls_head.fc_cls.weight', 'cls_head.fc_cls.bias'
    marker = 'conv1.conv.net.'

    def _layer(self, block, role, conv):
        part = 'conv' if conv else 'bn'
        if block is None:
            return f'backbone.conv1.{part}'
        layer = 'downsample' if role == 'short' else f'conv{self.role[role]}'
        wrapped = conv and role == 'a' and block[1] % self.n_round == 0
        return f'backbone.layer{block[0] + 1}.{block[1]}.{layer}.{part}' + (
            '.net' if wrapped else '')


def random_state(names, depth, num_classes, seed=0):
    """{name: float32 array} of a random network (random BN statistics too)."""
    rng = np.random.default_rng(seed)
    state = {}

    def add(block, role, out_ch, in_ch, k):
        state[names.conv(block, role)] = _conv(rng, out_ch, in_ch, k)
        for kind, value in _bn(rng, out_ch).items():
            state[names.bn(block, role, kind)] = value

    add(None, 'a', 64, 3, 7)
    for stage, i, in_ch, planes, stride in _blocks(depth):
        for role, out_ch, cin, k, _ in _convs(depth, in_ch, planes, stride):
            add((stage, i), role, out_ch, cin, k)
    feat = 2048 if SPECS[depth][0] else 512
    w = rng.normal(0, 0.05, (feat, num_classes))
    state[names.fc_w] = w if names.fc_in_out else w.T
    state[names.fc_b] = rng.normal(0, 0.1, num_classes)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def paddle_forward(state, names, depth, x, seg_num, shift_ratio):
    """Logits [N, classes] the paddle-side publishers compute for clips x [N, T, 3, H, W]:
    F.temporal_shift on each block's residual-branch input, per-frame fc, mean over T
    (the old zoo averages features before its fc: the same, fc being linear)."""
    p = {k: paddle.to_tensor(v) for k, v in state.items()}

    def conv_bn(y, block, role, k, stride, act):
        y = F.conv2d(y, p[names.conv(block, role)], stride=stride, padding=(k - 1) // 2)
        y = F.batch_norm(y, p[names.bn(block, role, 'mean')], p[names.bn(block, role, 'var')],
                         weight=p[names.bn(block, role, 'scale')],
                         bias=p[names.bn(block, role, 'offset')], training=False,
                         epsilon=1e-5)
        return F.relu(y) if act else y

    y = paddle.to_tensor(x.reshape((-1,) + x.shape[2:]))
    y = F.max_pool2d(conv_bn(y, None, 'a', 7, 2, True), 3, 2, 1)
    for stage, i, in_ch, planes, stride in _blocks(depth):
        convs = _convs(depth, in_ch, planes, stride)
        b = F.temporal_shift(y, seg_num, shift_ratio)
        branch = [c for c in convs if c[0] != 'short']
        for j, (role, _, _, k, s) in enumerate(branch):
            b = conv_bn(b, (stage, i), role, k, s, j < len(branch) - 1)
        short = y
        if convs[-1][0] == 'short':
            short = conv_bn(y, (stage, i), 'short', 1, stride, False)
        y = F.relu(short + b)
    feat = F.adaptive_avg_pool2d(y, 1).flatten(1)
    logits = paddle.matmul(feat, p[names.fc_w]) + p[names.fc_b]
    return logits.reshape([x.shape[0], seg_num, -1]).mean(axis=1).numpy()


def torch_shift(x, n_segment, fold_div=8):
    """The original ops/temporal_shift.py shift (non in-place)."""
    import torch
    nt, c, h, w = x.size()
    x = x.view(nt // n_segment, n_segment, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


def mmaction2_shift(x, num_segments, shift_div=8):
    """mmaction2's TemporalShift.shift: frames as [N/T, T, C, H*W], the first fold moved one
    frame earlier (zeros appended after the last), the second one frame later (zeros before
    the first), built by slicing and concatenation as it does."""
    import torch
    n, c, h, w = x.size()
    x = x.view(-1, num_segments, c, h * w)
    fold = c // shift_div
    first, second, rest = x[:, :, :fold], x[:, :, fold:2 * fold], x[:, :, 2 * fold:]
    first = torch.cat((first[:, 1:], torch.zeros_like(first[:, :1])), 1)
    second = torch.cat((torch.zeros_like(second[:, :1]), second[:, :-1]), 1)
    return torch.cat((first, second, rest), 2).view(n, c, h, w)


def torch_forward(state, names, depth, x, seg_num, shift, shift_op=torch_shift):
    """Logits of the original TSM or a torchvision ResNet run per frame (shift=False), in
    torch, on the torch state dict. shift=True shifts the blocks whose first conv the
    state dict names with names.marker (a TemporalShift wrapper); a set of (stage 0..3,
    index) shifts those blocks. shift_op(x, seg_num) is the publisher's shift."""
    import torch
    import torch.nn.functional as tf
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}
    if shift is True:
        shift = {(stage, i) for stage, i, *_ in _blocks(depth)
                 if any(f'layer{stage + 1}.{i}.{names.marker}' in k for k in state)}
    shifted = shift or set()

    def conv_bn(y, block, role, k, stride, act):
        y = tf.conv2d(y, t[names.conv(block, role)], stride=stride, padding=(k - 1) // 2)
        y = tf.batch_norm(y, t[names.bn(block, role, 'mean')], t[names.bn(block, role, 'var')],
                          t[names.bn(block, role, 'scale')], t[names.bn(block, role, 'offset')],
                          False, 0.0, 1e-5)
        return tf.relu(y) if act else y

    with torch.no_grad():
        y = torch.from_numpy(x.reshape((-1,) + x.shape[2:]))
        y = tf.max_pool2d(conv_bn(y, None, 'a', 7, 2, True), 3, 2, 1)
        for stage, i, in_ch, planes, stride in _blocks(depth):
            convs = _convs(depth, in_ch, planes, stride)
            b = shift_op(y, seg_num) if (stage, i) in shifted else y
            branch = [c for c in convs if c[0] != 'short']
            for j, (role, _, _, k, s) in enumerate(branch):
                b = conv_bn(b, (stage, i), role, k, s, j < len(branch) - 1)
            short = y
            if convs[-1][0] == 'short':
                short = conv_bn(y, (stage, i), 'short', 1, stride, False)
            y = tf.relu(short + b)
        feat = tf.adaptive_avg_pool2d(y, 1).flatten(1)
        logits = tf.linear(feat, t[names.fc_w], t[names.fc_b])
        return logits.view(x.shape[0], seg_num, -1).mean(1).numpy()


# PP-TSM: PaddleVideo's ResNetTweaksTSM (ResNet-vd) + ppTSMHead, as resnet_tweaks_tsm.py
# builds it for depth >= 50. Each ConvBNLayer is backbone.<name>._conv.weight and
# backbone.<name>._batch_norm.{weight,bias,_mean,_variance}.
PPTSM_STEM = [('conv1_1', 3, 32, 2), ('conv1_2', 32, 32, 1), ('conv1_3', 32, 64, 1)]


def pptsm_layers(depth):
    """[(name, out, in, kernel)] of every ConvBNLayer, stem first, then each block's conv0,
    conv1, conv2 and, for the first block of a stage, short."""
    layers = [(f'backbone.{n}', cout, cin, 3) for n, cin, cout, _ in PPTSM_STEM]
    in_ch = 64
    for stage, count in enumerate(SPECS[depth][1]):
        planes = 64 * 2 ** stage
        for i in range(count):
            name = f'backbone.bb_{stage}_{i}'
            layers += [(f'{name}.conv0', planes, in_ch, 1), (f'{name}.conv1', planes, planes, 3),
                       (f'{name}.conv2', planes * 4, planes, 1)]
            if i == 0:
                layers.append((f'{name}.short', planes * 4, in_ch, 1))
            in_ch = planes * 4
    return layers


def pptsm_state(depth, num_classes, seed=0):
    """{name: float32 array} of a random PP-TSM under PaddleVideo's state-dict names."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, out_ch, in_ch, k in pptsm_layers(depth):
        state[f'{name}._conv.weight'] = _conv(rng, out_ch, in_ch, k)
        bn = _bn(rng, out_ch)
        for ours, theirs in (('scale', 'weight'), ('offset', 'bias'), ('mean', '_mean'),
                             ('var', '_variance')):
            state[f'{name}._batch_norm.{theirs}'] = bn[ours]
    state['head.fc.weight'] = rng.normal(0, 0.05, (2048, num_classes))
    state['head.fc.bias'] = rng.normal(0, 0.1, num_classes)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def pptsm_forward(state, depth, x, seg_num):
    """Logits [N, classes] of PP-TSM on clips x [N, T, 3, H, W]: leaky ReLU, F.temporal_shift
    (ratio 1/seg_num) on every block's input, the first block of stages 1..3 pooling 2x2
    (ceil mode) before its shortcut conv, and ppTSMHead's mean of the features over the
    segments before its fc."""
    p = {k: paddle.to_tensor(v) for k, v in state.items()}

    def conv_bn_layer(y, name, stride, act, pool=False):
        if pool:
            y = F.avg_pool2d(y, kernel_size=2, stride=2, padding=0, ceil_mode=True)
        w = p[f'{name}._conv.weight']
        y = F.conv2d(y, w, stride=stride, padding=(w.shape[2] - 1) // 2)
        bn = f'{name}._batch_norm.'
        y = F.batch_norm(y, p[bn + '_mean'], p[bn + '_variance'], weight=p[bn + 'weight'],
                         bias=p[bn + 'bias'], training=False, epsilon=1e-5)
        return F.leaky_relu(y) if act else y

    y = paddle.to_tensor(x.reshape((-1,) + x.shape[2:]))
    for name, _, _, stride in PPTSM_STEM:
        y = conv_bn_layer(y, f'backbone.{name}', stride, True)
    y = F.max_pool2d(y, kernel_size=3, stride=2, padding=1)
    for stage, count in enumerate(SPECS[depth][1]):
        for i in range(count):
            name = f'backbone.bb_{stage}_{i}'
            shifts = F.temporal_shift(y, seg_num, 1.0 / seg_num)
            b = conv_bn_layer(shifts, f'{name}.conv0', 1, True)
            b = conv_bn_layer(b, f'{name}.conv1', 2 if i == 0 and stage != 0 else 1, True)
            b = conv_bn_layer(b, f'{name}.conv2', 1, False)
            short = y if i else conv_bn_layer(y, f'{name}.short', 1, False, pool=stage != 0)
            y = F.leaky_relu(short + b)
    feat = F.adaptive_avg_pool2d(y, 1).reshape([-1, seg_num, y.shape[1]]).mean(axis=1)
    return (paddle.matmul(feat, p['head.fc.weight']) + p['head.fc.bias']).numpy()
