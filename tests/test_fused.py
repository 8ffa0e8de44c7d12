"""models/fused.py: the inference form computes what the model computes, block by block."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

from models import TSM
from models.fused import ShiftConv, fuse_shifts

CONFIGS = [
    dict(depth=18),
    dict(depth=50),
    dict(depth=50, shift_mode='online'),
    dict(depth=50, backbone='resnet_vd'),  # PP-TSM; 48x40 frames give the pools odd sides
    dict(depth=34, shift_every=2, shift_ratio=0.25),
    dict(depth=18, shift_place='inplace'),
    dict(depth=18, shift_mode='none'),
]


def with_statistics(model, seed):
    """Random BatchNorm statistics and affine parameters, so that a wrong fold shows."""
    rng = np.random.default_rng(seed)
    for layer in model.sublayers():
        if isinstance(layer, nn.BatchNorm2D):
            n = layer._mean.shape[0]
            layer._mean.set_value(rng.normal(0, 0.5, n).astype('float32'))
            layer._variance.set_value(rng.uniform(0.3, 2.0, n).astype('float32'))
            layer.weight.set_value(rng.normal(1, 0.5, n).astype('float32'))
            layer.bias.set_value(rng.normal(0, 0.5, n).astype('float32'))
    model.eval()
    return model


def shifted_residual_blocks(model):
    return [b for b in model.sublayers()
            if getattr(b, 'shift', None) is not None and b.shift_place == 'residual']


@pytest.mark.parametrize('kwargs', CONFIGS, ids=lambda k: '-'.join(f'{v}' for v in k.values()))
def test_fused_equals_model(kwargs):
    paddle.seed(0)
    model = with_statistics(TSM(num_classes=9, seg_num=4, **kwargs), seed=1)
    clips = paddle.to_tensor(np.random.default_rng(2).standard_normal(
        [3, 4, 3, 48, 40], dtype=np.float32))
    with paddle.no_grad():
        want = model.frame_scores(clips).numpy()
        fused = fuse_shifts(model)
        got = fused.frame_scores(clips).numpy()
        again = model.frame_scores(clips).numpy()
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    np.testing.assert_array_equal(again, want)  # the model itself is left as it was
    merged = [b for b in fused.sublayers() if isinstance(b, ShiftConv)]
    assert len(merged) == len(shifted_residual_blocks(model))
    assert not shifted_residual_blocks(fused)


def test_counts_per_placement():
    # ResNet-50 has 16 blocks; every other block of each stage shifts with shift_every=2
    # (blocks 0, 2 of 3, 0, 2 of 4, 0, 2, 4 of 6, 0, 2 of 3); in-place shifts stay as they are.
    def merged(**kwargs):
        fused = fuse_shifts(TSM(num_classes=5, seg_num=2, **kwargs))
        return sum(isinstance(b, ShiftConv) for b in fused.sublayers())
    assert merged(depth=50) == 16
    assert merged(depth=50, shift_every=2) == 9
    assert merged(depth=50, shift_place='inplace') == 0


def test_moved_channels_only_in_the_fold_convolution():
    model = with_statistics(TSM(num_classes=5, seg_num=2, depth=50), seed=3)
    conv = fuse_shifts(model).layer2[1].conv1
    # layer2 blocks read 512 channels: two folds of 64 move, 384 stay.
    assert conv.moved == 128
    assert conv.moved_conv.weight.shape == [128, 128, 1, 1]
    assert not np.any(conv.whole.weight.numpy()[:, :128])
    assert np.all(np.any(conv.whole.weight.numpy()[:, 128:] != 0, axis=(0, 2, 3)))
