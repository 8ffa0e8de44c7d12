"""PaddleVideo's PP-TSMv2 (paddlevideo/modeling/backbones/pptsm_v2.py, PPTSM_v2 with
MoViNetHead, an identity) for the tests: random weights under its parameter names, and its
forward pass written from its code with paddle's functional ops.

Nothing here imports models/. What the source does and this follows: the stem, the four
stages of (in channels, kernel, split_pw, use_rep, use_se, use_shortcut) from its NET_CONFIG
with depths [2, 2, 6, 2]; a re-parameterisable block sums its branches of kernels 5, 3, 1
(1 left out at stride 2), each conv + BN, before a ReLU, and keeps an unused plain conv
`dw_conv` with a bias beside them; GlobalAttention (the frames' means through Linear(T, T),
a sigmoid) when use_temporal_att, then F.temporal_shift(x, T, 1 / T) before stage 3; the
pool, last_conv, ReLU, Dropout(0.2, mode='downscale_in_infer') (x 0.8 in evaluation), the
mean over the T frames and the classifier.
"""
import numpy as np
import paddle
import paddle.nn.functional as F

NET_CONFIG = [(64, 3, False, False, False, False), (128, 3, False, False, False, False),
              (256, 5, True, True, True, False), (512, 5, False, True, False, True)]
DEPTHS = [2, 2, 6, 2]
DROPOUT = 0.2


def _blocks():
    """(name, in, out, stride, kernel, split_pw, use_rep, use_se, use_shortcut) in order."""
    yield 'stem.1', 32, 64, 1, 3, False, False, False, False
    for s, ((ch, k, split, rep, se, short), depth) in enumerate(zip(NET_CONFIG, DEPTHS)):
        for i in range(depth):
            yield (f'stages.{s}.{i}', ch if i == 0 else 2 * ch, 2 * ch, 2 if i == 0 else 1,
                   k, split, rep, se, short)


def _conv_bn(state, rng, name, cout, cin, k):
    state[f'{name}.conv.weight'] = rng.normal(0, np.sqrt(2 / (cin * k * k)),
                                              (cout, cin, k, k))
    state[f'{name}.bn.weight'] = rng.uniform(0.5, 1.5, cout)
    state[f'{name}.bn.bias'] = rng.normal(0, 0.1, cout)
    state[f'{name}.bn._mean'] = rng.normal(0, 0.1, cout)
    state[f'{name}.bn._variance'] = rng.uniform(0.5, 1.5, cout)


def state(classes, seg_num, attention=False, seed=0):
    """{PaddleVideo backbone name: float32 array} of random weights (no prefix)."""
    rng = np.random.default_rng(seed)
    out = {}
    _conv_bn(out, rng, 'stem.0', 32, 3, 3)
    for name, cin, cout, stride, k, split, rep, se, _ in _blocks():
        if rep:
            for j, kk in enumerate(kk for kk in range(k, 0, -2) if kk > 1 or stride == 1):
                _conv_bn(out, rng, f'{name}.dw_conv_list.{j}', cin, 1, kk)
            # the plain conv the source builds beside the branches and uses only after rep()
            out[f'{name}.dw_conv.weight'] = rng.normal(0, 1, (cin, 1, k, k))
            out[f'{name}.dw_conv.bias'] = rng.normal(0, 1, cin)
        else:
            _conv_bn(out, rng, f'{name}.dw_conv', cin, 1, k)
        if se:
            out[f'{name}.se.conv1.weight'] = rng.normal(0, 0.1, (cin // 4, cin, 1, 1))
            out[f'{name}.se.conv1.bias'] = rng.normal(0, 0.1, cin // 4)
            out[f'{name}.se.conv2.weight'] = rng.normal(0, 0.1, (cin, cin // 4, 1, 1))
            out[f'{name}.se.conv2.bias'] = rng.normal(0, 0.1, cin)
        if split:
            _conv_bn(out, rng, f'{name}.pw_conv_1', cout // 2, cin, 1)
            _conv_bn(out, rng, f'{name}.pw_conv_2', cout, cout // 2, 1)
        else:
            _conv_bn(out, rng, f'{name}.pw_conv', cout, cin, 1)
    out['last_conv.weight'] = rng.normal(0, np.sqrt(2 / 1024), (1280, 1024, 1, 1))
    out['fc.weight'] = rng.normal(0, 0.05, (1280, classes))
    out['fc.bias'] = rng.normal(0, 0.1, classes)
    if attention:
        out['global_attention.fc.weight'] = rng.normal(0, 0.5, (seg_num, seg_num))
        out['global_attention.fc.bias'] = rng.normal(0, 0.5, seg_num)
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def _t(state, name):
    return paddle.to_tensor(state[name])


def _conv_bn_fwd(state, name, x, stride, groups=1, act=True):
    w = _t(state, f'{name}.conv.weight')
    x = F.conv2d(x, w, stride=stride, padding=(w.shape[-1] - 1) // 2, groups=groups)
    x = F.batch_norm(x, _t(state, f'{name}.bn._mean'), _t(state, f'{name}.bn._variance'),
                     _t(state, f'{name}.bn.weight'), _t(state, f'{name}.bn.bias'),
                     training=False, epsilon=1e-5)
    return F.relu(x) if act else x


def _block(state, block, x):
    name, cin, cout, stride, k, split, rep, se, short = block
    inp = x
    if rep:
        branches = [f'{name}.dw_conv_list.{j}'
                    for j in range(len([kk for kk in range(k, 0, -2) if kk > 1 or stride == 1]))]
        y = _conv_bn_fwd(state, branches[0], x, stride, cin, act=False)
        for b in branches[1:]:
            y = y + _conv_bn_fwd(state, b, x, stride, cin, act=False)
        x = F.relu(y)
    else:
        x = _conv_bn_fwd(state, f'{name}.dw_conv', x, stride, cin)
    if se:
        w = F.adaptive_avg_pool2d(x, 1)
        w = F.relu(F.conv2d(w, _t(state, f'{name}.se.conv1.weight'),
                            _t(state, f'{name}.se.conv1.bias')))
        w = F.sigmoid(F.conv2d(w, _t(state, f'{name}.se.conv2.weight'),
                               _t(state, f'{name}.se.conv2.bias')))
        x = x * w
    if split:
        x = _conv_bn_fwd(state, f'{name}.pw_conv_2',
                         _conv_bn_fwd(state, f'{name}.pw_conv_1', x, 1), 1)
    else:
        x = _conv_bn_fwd(state, f'{name}.pw_conv', x, 1)
    if short and stride == 1 and cin == cout:
        x = x + inp
    return x


def forward(state, clips, seg_num):
    """Logits [N, classes] of the source network on clips [N, T, 3, H, W] (numpy)."""
    x = paddle.to_tensor(clips.reshape((-1,) + clips.shape[2:]))
    blocks = list(_blocks())
    x = _conv_bn_fwd(state, 'stem.0', x, 2)
    x = _block(state, blocks[0], x)
    for s in range(4):
        if s == 2:
            if 'global_attention.fc.weight' in state:
                _, c, h, w = x.shape
                means = paddle.mean(x.reshape([-1, seg_num, c * h * w]), axis=2)
                att = F.sigmoid(F.linear(means, _t(state, 'global_attention.fc.weight'),
                                         _t(state, 'global_attention.fc.bias')))
                x = (x.reshape([-1, seg_num, c, h, w]) * att.reshape([-1, seg_num, 1, 1, 1])
                     ).reshape([-1, c, h, w])
            x = F.temporal_shift(x, seg_num, 1.0 / seg_num)
        for block in blocks[1:]:
            if block[0].startswith(f'stages.{s}.'):
                x = _block(state, block, x)
    x = F.adaptive_avg_pool2d(x, 1)
    x = F.relu(F.conv2d(x, _t(state, 'last_conv.weight')))
    x = x * (1 - DROPOUT)  # Dropout downscale_in_infer in evaluation
    x = paddle.mean(x.reshape([-1, seg_num, x.shape[1]]), axis=1)
    return F.linear(x, _t(state, 'fc.weight'), _t(state, 'fc.bias')).numpy()
