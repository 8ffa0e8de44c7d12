"""The MobileNetV2 layouts of the original TSM code and of PaddleVideo's PP-TSM for tests:
random weights under their parameter names, and forward passes written as their code
computes them, in PyTorch for the first and in Paddle for the second.

Nothing here imports models/. Spelled out from mit-han-lab/temporal-shift-module:
- archs/mobilenet_v2.py under ops/models.py (the Kinetics-400 checkpoint): module.base_model.
  features.{0..18}.*, module.new_fc.*; each InvertedResidual with 8 layers and a residual
  connection has conv[0] wrapped by TemporalShift (conv.0.net.weight), bidirectional, 1/8;
- online_demo/mobilenet_v2_tsm.py (the Jester gesture checkpoint): features.*, classifier.*,
  the blocks of shift_block_idx take the first c // 8 channels from a buffer holding the
  previous frame's, and hand their own first c // 8 on.
"""
import numpy as np

from source_nets import torch_shift

# t, c, n, s of interverted_residual_setting
SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]
SHIFT_BLOCK_IDX = [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]


def blocks():
    """(feature index 1..17, inp, oup, stride, t) of each InvertedResidual."""
    out, inp, index = [], 32, 1
    for t, c, n, s in SETTING:
        for i in range(n):
            out.append((index, inp, c, s if i == 0 else 1, t))
            inp, index = c, index + 1
    return out


def _bn(rng, prefix, c, state):
    state[prefix + 'weight'] = rng.uniform(0.8, 1.2, c).astype(np.float32)
    state[prefix + 'bias'] = rng.normal(0, 0.1, c).astype(np.float32)
    state[prefix + 'running_mean'] = rng.normal(0, 0.1, c).astype(np.float32)
    state[prefix + 'running_var'] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    state[prefix + 'num_batches_tracked'] = np.array(100, dtype=np.int64)


def _conv(rng, name, out_ch, in_ch, k, state):
    state[name] = rng.normal(0, np.sqrt(2.0 / (in_ch * k * k)),
                             (out_ch, in_ch, k, k)).astype(np.float32)


def _is_shifted_offline(t, inp, oup, stride):
    return t != 1 and stride == 1 and inp == oup  # len(m.conv) == 8 and m.use_res_connect


def random_state(seed, num_classes, layout):
    """A state dict of the original MobileNetV2: layout 'k400' (ops/models.py, TSM wraps)
    or 'online' (online_demo/mobilenet_v2_tsm.py)."""
    rng = np.random.default_rng(seed)
    prefix = 'module.base_model.' if layout == 'k400' else ''
    state = {}
    _conv(rng, f'{prefix}features.0.0.weight', 32, 3, 3, state)
    _bn(rng, f'{prefix}features.0.1.', 32, state)
    for index, inp, oup, stride, t in blocks():
        p = f'{prefix}features.{index}.conv.'
        hidden = inp * t
        if t == 1:
            layers = [('0', hidden, 1, 3), ('3', oup, hidden, 1)]
        else:
            wrap = layout == 'k400' and _is_shifted_offline(t, inp, oup, stride)
            layers = [('0.net' if wrap else '0', hidden, inp, 1), ('3', hidden, 1, 3),
                      ('6', oup, hidden, 1)]
        for name, out_ch, in_ch, k in layers:
            _conv(rng, f'{p}{name}.weight', out_ch, in_ch, k, state)
            _bn(rng, f'{p}{int(name[0]) + 1}.', out_ch, state)
    _conv(rng, f'{prefix}features.18.0.weight', 1280, 320, 1, state)
    _bn(rng, f'{prefix}features.18.1.', 1280, state)
    fc = 'module.new_fc.' if layout == 'k400' else 'classifier.'
    state[fc + 'weight'] = rng.normal(0, 0.05, (num_classes, 1280)).astype(np.float32)
    state[fc + 'bias'] = rng.normal(0, 0.1, num_classes).astype(np.float32)
    return state


class _Net:
    """The original MobileNetV2's layers as torch.nn.functional calls on a state dict."""

    def __init__(self, state, prefix):
        import torch
        self.t = {k[len(prefix):]: torch.from_numpy(np.asarray(v)) for k, v in state.items()
                  if k.startswith(prefix)}

    def conv_bn(self, y, conv, bn, stride, groups, act):
        import torch.nn.functional as tf
        w = self.t[conv]
        y = tf.conv2d(y, w, stride=stride, padding=(w.shape[-1] - 1) // 2, groups=groups)
        y = tf.batch_norm(y, self.t[bn + 'running_mean'], self.t[bn + 'running_var'],
                          self.t[bn + 'weight'], self.t[bn + 'bias'], False, 0.0, 1e-5)
        return tf.relu6(y) if act else y

    def block(self, index, inp, oup, stride, t, y, shift=None):
        """InvertedResidual.forward; `shift(x)` -> what conv[0] reads, where it is wrapped."""
        p = f'features.{index}.conv.'
        x = y
        if t == 1:
            y = self.conv_bn(y, p + '0.weight', p + '1.', stride, inp, True)
            y = self.conv_bn(y, p + '3.weight', p + '4.', 1, 1, False)
        else:
            conv0 = p + ('0.net.weight' if p + '0.net.weight' in self.t else '0.weight')
            y = self.conv_bn(shift(y) if shift else y, conv0, p + '1.', 1, 1, True)
            y = self.conv_bn(y, p + '3.weight', p + '4.', stride, inp * t, True)
            y = self.conv_bn(y, p + '6.weight', p + '7.', 1, 1, False)
        return x + y if stride == 1 and inp == oup else y

    def stem(self, x):
        return self.conv_bn(x, 'features.0.0.weight', 'features.0.1.', 2, 1, True)

    def head(self, y, fc):
        y = self.conv_bn(y, 'features.18.0.weight', 'features.18.1.', 1, 1, True)
        y = y.mean(3).mean(2)
        return y @ self.t[fc + 'weight'].T + self.t[fc + 'bias']


def k400_forward(state, x, seg_num):
    """Clip logits [N, classes] of the original TSM on MobileNetV2 (x [N, T, 3, H, W]):
    per-frame logits of new_fc, averaged over the segments (consensus 'avg')."""
    import torch
    net = _Net(state, 'module.base_model.')
    net.t.update({k[len('module.'):]: torch.from_numpy(v) for k, v in state.items()
                  if k.startswith('module.new_fc.')})
    with torch.no_grad():
        y = net.stem(torch.from_numpy(x.reshape((-1,) + x.shape[2:])))
        for index, inp, oup, stride, t in blocks():
            wrapped = f'features.{index}.conv.0.net.weight' in net.t
            y = net.block(index, inp, oup, stride, t, y,
                          (lambda v: torch_shift(v, seg_num)) if wrapped else None)
        logits = net.head(y, 'new_fc.')
        return logits.reshape(x.shape[0], seg_num, -1).mean(1).numpy()


def online_forward(state, frames):
    """Per-frame logits [T, classes] of online_demo/mobilenet_v2_tsm.py on frames
    [T, 3, H, W] fed one at a time from zero buffers, as its __main__ starts."""
    import torch
    net = _Net(state, '')
    outputs, buffers = [], None
    with torch.no_grad():
        for frame in frames:
            y = net.stem(torch.from_numpy(frame[None]))
            new_buffers, k = [], 0
            for global_idx, (index, inp, oup, stride, t) in enumerate(blocks()):
                if global_idx in SHIFT_BLOCK_IDX:
                    c = y.shape[1]
                    buffer = (torch.zeros_like(y[:, :c // 8]) if buffers is None
                              else buffers[k])
                    new_buffers.append(y[:, :c // 8])
                    y = net.block(index, inp, oup, stride, t, y,
                                  lambda v, b=buffer: torch.cat((b, v[:, c // 8:]), 1))
                    k += 1
                else:
                    y = net.block(index, inp, oup, stride, t, y)
            buffers = new_buffers
            outputs.append(net.head(y, 'classifier.').numpy()[0])
    return np.stack(outputs)


# PaddleVideo's PP-TSM MobileNetV2 (paddlevideo/modeling/backbones/pptsm_mv2.py, PaddleClas's
# MobileNetV2): conv1 the stem; conv2..conv8 one InvresiBlocks per row of SETTING, its first
# block _first_block, the others conv{g}_{j}; every block has _expand_conv (the first one's
# expanding by 1), _bottleneck_conv, _linear_conv (ConvBNLayer: _conv, _batch_norm); conv9
# the last 1x1 conv; out the classifier; MoViNetHead passes the backbone's output through.


def _pv_bn(rng, prefix, c, state):
    state[prefix + 'weight'] = rng.uniform(0.8, 1.2, c).astype(np.float32)
    state[prefix + 'bias'] = rng.normal(0, 0.1, c).astype(np.float32)
    state[prefix + '_mean'] = rng.normal(0, 0.1, c).astype(np.float32)
    state[prefix + '_variance'] = rng.uniform(0.5, 1.5, c).astype(np.float32)


def _pv_conv_bn(rng, name, out_ch, in_ch, k, state):
    _conv(rng, f'backbone.{name}._conv.weight', out_ch, in_ch, k, state)
    _pv_bn(rng, f'backbone.{name}._batch_norm.', out_ch, state)


def pptsm_units():
    """(name, inp, oup, stride, t, ifshortcut) of each InvertedResidualUnit in order."""
    units, inp = [], 32
    for g, (t, c, n, s) in enumerate(SETTING, start=2):
        units.append((f'conv{g}._first_block', inp, c, s, t, False))
        units += [(f'conv{g}.conv{g}_{j}', c, c, 1, t, True) for j in range(2, n + 1)]
        inp = c
    return units


def pptsm_state(seed, num_classes):
    rng = np.random.default_rng(seed)
    state = {}
    _pv_conv_bn(rng, 'conv1', 32, 3, 3, state)
    for name, inp, oup, stride, t, _ in pptsm_units():
        hidden = int(round(inp * t))
        _pv_conv_bn(rng, f'{name}._expand_conv', hidden, inp, 1, state)
        _pv_conv_bn(rng, f'{name}._bottleneck_conv', hidden, 1, 3, state)
        _pv_conv_bn(rng, f'{name}._linear_conv', oup, hidden, 1, state)
    _pv_conv_bn(rng, 'conv9', 1280, 320, 1, state)
    state['backbone.out.weight'] = rng.normal(0, 0.05, (1280, num_classes)).astype(np.float32)
    state['backbone.out.bias'] = rng.normal(0, 0.1, num_classes).astype(np.float32)
    return state


def pptsm_forward(state, x, seg_num):
    """Logits [N, classes] of PP-TSM's MobileNetV2 on clips x [N, T, 3, H, W], in Paddle as
    its code computes them: F.temporal_shift (ratio 1/seg_num) on the input of each block
    with ifshortcut, which then adds its unshifted input; features averaged over the
    segments, then out."""
    import paddle
    import paddle.nn.functional as F

    t = {k: paddle.to_tensor(v) for k, v in state.items()}

    def conv_bn(y, name, stride, groups, act):
        w = t[f'backbone.{name}._conv.weight']
        y = F.conv2d(y, w, stride=stride, padding=(w.shape[-1] - 1) // 2, groups=groups)
        p = f'backbone.{name}._batch_norm.'
        y = F.batch_norm(y, t[p + '_mean'], t[p + '_variance'], t[p + 'weight'], t[p + 'bias'],
                         training=False, epsilon=1e-5)
        return F.relu6(y) if act else y

    with paddle.no_grad():
        y = conv_bn(paddle.to_tensor(x.reshape((-1,) + x.shape[2:])), 'conv1', 2, 1, True)
        for name, inp, oup, stride, t_, shortcut in pptsm_units():
            z = F.temporal_shift(y, seg_num, 1.0 / seg_num) if shortcut else y
            hidden = int(round(inp * t_))
            z = conv_bn(z, f'{name}._expand_conv', 1, 1, True)
            z = conv_bn(z, f'{name}._bottleneck_conv', stride, hidden, True)
            z = conv_bn(z, f'{name}._linear_conv', 1, 1, False)
            y = y + z if shortcut else z
        y = conv_bn(y, 'conv9', 1, 1, True)
        y = paddle.mean(y, axis=[2, 3]).reshape([-1, seg_num, 1280]).mean(axis=1)
        return (paddle.matmul(y, t['backbone.out.weight']) + t['backbone.out.bias']).numpy()
