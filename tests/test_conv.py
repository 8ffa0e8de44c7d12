"""models/workarounds/conv.py: the single-product convolution equals paddle's, values and gradients, and
is taken exactly where its rule says."""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from models.workarounds import conv
from models.workarounds.conv import Conv2D, as_one_product as PRODUCT

# (batch, in channels, side, out channels, kernel, stride): small maps that take the single
# product in training, and a 14x14 output that keeps paddle's kernel. Taps that read only
# padding: 1x1 maps (the centre alone), a 2x2 map at stride 2 (the last two taps), a 5x5
# kernel on a 2x2 map (the middle three).
SHAPES = [(6, 5, 8, 7, 3, 2), (4, 6, 3, 5, 3, 1), (5, 4, 1, 6, 3, 1), (3, 8, 4, 5, 1, 2),
          (3, 4, 2, 5, 3, 2), (2, 3, 2, 4, 5, 1), (3, 6, 1, 4, 7, 2),
          (2, 3, 14, 4, 7, 2), (2, 4, 14, 3, 3, 1)]


def reference(x, weight, stride, padding, groups=1):
    """Forward and gradients through paddle's own conv2d."""
    x = paddle.to_tensor(x, stop_gradient=False)
    weight = paddle.to_tensor(weight, stop_gradient=False)
    y = F.conv2d(x, weight, stride=stride, padding=padding, groups=groups)
    return y, x, weight


def assert_trains_as_paddles_conv(layer, x, rng, stride, padding, groups=1):
    """layer (in training) on x, and its gradients for a random upstream gradient, equal
    paddle's conv2d's with the layer's weight."""
    ours_x = paddle.to_tensor(x, stop_gradient=False)
    y = layer(ours_x)
    upstream = rng.standard_normal(y.shape, dtype=np.float32)
    (y * paddle.to_tensor(upstream)).sum().backward()
    want, ref_x, ref_w = reference(x, layer.weight.numpy(), stride, padding, groups)
    (want * paddle.to_tensor(upstream)).sum().backward()
    np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours_x.grad.numpy(), ref_x.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad.numpy(), ref_w.grad.numpy(), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize('shape', SHAPES)
def test_training_forward_and_gradients_equal_paddles_conv(shape, monkeypatch):
    n, c, side, out, k, stride = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal([n, c, side, side], dtype=np.float32)
    layer = Conv2D(c, out, k, stride=stride, padding=k // 2, bias_attr=False)
    layer.train()
    calls = []
    monkeypatch.setattr(conv, 'as_one_product',
                        lambda *a: calls.append(a) or PRODUCT(*a))
    assert_trains_as_paddles_conv(layer, x, rng, stride, k // 2)
    out_side = (side + 2 * (k // 2) - k) // stride + 1
    assert len(calls) == (1 if out_side ** 2 <= conv.SMALL_OUTPUT else 0)


def test_evaluation_and_other_layouts_keep_paddles_kernel(monkeypatch):
    calls = []
    monkeypatch.setattr(conv, 'as_one_product', lambda *a: calls.append(a))
    x = paddle.randn([2, 4, 3, 3])
    layer = Conv2D(4, 4, 3, padding=1, bias_attr=False)
    layer.eval()
    layer(x)
    for other in (Conv2D(4, 4, 3, padding=1), Conv2D(4, 4, 3, padding=1, groups=2,
                                                      bias_attr=False),
                  Conv2D(4, 4, 3, padding=2, dilation=2, bias_attr=False),
                  Conv2D(4, 4, 1, padding=1, bias_attr=False)):  # pads wider than the kernel
        other.train()
        other(x)
    one_row = Conv2D(4, 4, 3, padding=1, bias_attr=False)  # Paddle 2.6 cannot fold a 1x4 map
    one_row.train()
    one_row(paddle.randn([2, 4, 1, 4]))
    assert calls == []


def test_state_dict_names_are_paddles():
    assert list(Conv2D(3, 4, 3, bias_attr=False).state_dict()) == ['weight']


@pytest.mark.parametrize('side, kernel, stride, padding, taps', [
    (1, 3, 1, 1, (1, 1, 0, 0)),   # a 1x1 map: the centre tap alone, no padding
    (2, 3, 2, 1, (1, 2, 0, 0)),   # one output over the 2x2 map
    (2, 5, 1, 2, (1, 3, 1, 1)),   # taps 0 and 4 read padding at both outputs
    (4, 3, 2, 1, (0, 2, 1, 0)),   # every tap live; the last output needs no padding after
    (8, 3, 1, 1, (0, 2, 1, 1)),
])
def test_live_taps(side, kernel, stride, padding, taps):
    assert tuple(conv.live_taps(side, kernel, stride, padding)) == taps


@pytest.mark.parametrize('frozen', ['input', 'filter'])
def test_a_tensor_without_gradient_gets_none_and_the_other_its_gradient(frozen):
    """The first layer's input (the frames) needs no gradient, nor a frozen filter: the
    product still computes the other one's."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal([4, 3, 2, 2], dtype=np.float32)
    layer = Conv2D(3, 5, 3, stride=2, padding=1, bias_attr=False)
    layer.train()
    layer.weight.stop_gradient = frozen == 'filter'
    frames = paddle.to_tensor(x, stop_gradient=frozen == 'input')
    layer(frames).sum().backward()
    want, ref_x, ref_w = reference(x, layer.weight.numpy(), 2, 1)
    want.sum().backward()
    ours, theirs = (frames, layer.weight), (ref_x, ref_w)
    kept, dropped = (1, 0) if frozen == 'input' else (0, 1)
    assert ours[dropped].grad is None
    np.testing.assert_allclose(ours[kept].grad.numpy(), theirs[kept].grad.numpy(), rtol=1e-5,
                               atol=1e-5)


# (batch, channels, side, kernel, stride): depthwise convolutions (MobileNetV2's) whose
# output maps are 2x2 or smaller take the columns in training; a 1x1 map its centre tap; a 4x4
# output keeps paddle's kernel
DEPTHWISE = [(4, 6, 2, 3, 1), (3, 5, 3, 3, 2), (4, 6, 1, 3, 1), (3, 4, 2, 3, 2),
             (2, 3, 4, 3, 2), (2, 4, 4, 3, 1)]


@pytest.mark.parametrize('shape', DEPTHWISE)
def test_depthwise_training_forward_and_gradients_equal_paddles_conv(shape, monkeypatch):
    n, c, side, k, stride = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal([n, c, side, side], dtype=np.float32)
    layer = Conv2D(c, c, k, stride=stride, padding=k // 2, groups=c, bias_attr=False)
    layer.train()
    calls = []
    columns = conv.depthwise_as_columns
    monkeypatch.setattr(conv, 'depthwise_as_columns', lambda *a: calls.append(a) or columns(*a))
    assert_trains_as_paddles_conv(layer, x, rng, stride, k // 2, groups=c)
    out_side = (side + 2 * (k // 2) - k) // stride + 1
    assert len(calls) == (1 if out_side ** 2 <= conv.SMALL_DEPTHWISE else 0)
