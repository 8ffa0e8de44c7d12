"""models/conv.py: the single-product convolution equals paddle's, values and gradients, and
is taken exactly where its rule says."""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from models import conv
from models.conv import Conv2D, as_one_product as PRODUCT

# (batch, in channels, side, out channels, kernel, stride): small maps that take the single
# product in training, and a 14x14 output that keeps paddle's kernel.
SHAPES = [(6, 5, 8, 7, 3, 2), (4, 6, 3, 5, 3, 1), (5, 4, 1, 6, 3, 1), (3, 8, 4, 5, 1, 2),
          (2, 3, 14, 4, 7, 2), (2, 4, 14, 3, 3, 1)]


def reference(x, weight, stride, padding):
    """Forward and gradients through paddle's own conv2d."""
    x = paddle.to_tensor(x, stop_gradient=False)
    weight = paddle.to_tensor(weight, stop_gradient=False)
    y = F.conv2d(x, weight, stride=stride, padding=padding)
    return y, x, weight


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
    ours_x = paddle.to_tensor(x, stop_gradient=False)
    y = layer(ours_x)
    upstream = rng.standard_normal(y.shape, dtype=np.float32)
    (y * paddle.to_tensor(upstream)).sum().backward()
    want, ref_x, ref_w = reference(x, layer.weight.numpy(), stride, k // 2)
    (want * paddle.to_tensor(upstream)).sum().backward()
    out_side = (side + 2 * (k // 2) - k) // stride + 1
    assert len(calls) == (1 if out_side ** 2 <= conv.SMALL_OUTPUT else 0)
    np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours_x.grad.numpy(), ref_x.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad.numpy(), ref_w.grad.numpy(), rtol=1e-5,
                               atol=1e-5)


def test_evaluation_and_other_layouts_keep_paddles_kernel(monkeypatch):
    calls = []
    monkeypatch.setattr(conv, 'as_one_product', lambda *a: calls.append(a))
    x = paddle.randn([2, 4, 3, 3])
    layer = Conv2D(4, 4, 3, padding=1, bias_attr=False)
    layer.eval()
    layer(x)
    for other in (Conv2D(4, 4, 3, padding=1), Conv2D(4, 4, 3, padding=1, groups=2,
                                                      bias_attr=False),
                  Conv2D(4, 4, 3, padding=2, dilation=2, bias_attr=False)):
        other.train()
        other(x)
    assert calls == []


def test_state_dict_names_are_paddles():
    assert list(Conv2D(3, 4, 3, bias_attr=False).state_dict()) == ['weight']
