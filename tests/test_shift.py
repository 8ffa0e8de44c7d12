"""Temporal shift: direction, clip edges, fold sizes, relation to Paddle's op."""
import numpy as np
import paddle
import pytest

from models.shift import TemporalShift, temporal_shift


def encoded(num_clips, seg_num, channels):
    """[N*T, C, 1, 1] with value clip*10000 + frame*100 + channel."""
    n, t, c = np.meshgrid(np.arange(num_clips), np.arange(seg_num),
                          np.arange(channels), indexing='ij')
    values = (n * 10000 + t * 100 + c).astype('float32')
    return values.reshape(num_clips * seg_num, channels, 1, 1)


def expected_value(clip, frame, channel, seg_num, fold, mode):
    """Reference written per element: which frame a channel reads from."""
    if mode == 'bidirectional' and channel < fold:
        source = frame + 1
    elif mode == 'bidirectional' and channel < 2 * fold:
        source = frame - 1
    elif mode == 'online' and channel < fold:
        source = frame - 1
    else:
        source = frame
    if not 0 <= source < seg_num:
        return 0.0
    return clip * 10000 + source * 100 + channel


@pytest.mark.parametrize('mode', ['bidirectional', 'online'])
@pytest.mark.parametrize('channels,ratio,fold', [(16, 0.125, 2), (8, 0.25, 2),
                                                 (12, 0.125, 1)])
def test_every_element(mode, channels, ratio, fold):
    clips, seg_num = 3, 4
    x = encoded(clips, seg_num, channels)
    out = temporal_shift(paddle.to_tensor(x), seg_num, ratio, mode).numpy()
    assert out.shape == x.shape
    out = out.reshape(clips, seg_num, channels)
    for n in range(clips):
        for t in range(seg_num):
            for c in range(channels):
                want = expected_value(n, t, c, seg_num, fold, mode)
                assert out[n, t, c] == want, (n, t, c)


def test_bidirectional_spot_values():
    # clip 1, C=8, fold 1: channel 0 from t+1, channel 1 from t-1.
    out = temporal_shift(paddle.to_tensor(encoded(2, 3, 8)), 3, 0.125)
    out = out.numpy().reshape(2, 3, 8)
    assert out[1, 0, :3].tolist() == [10100.0, 0.0, 10002.0]
    assert out[1, 1, :3].tolist() == [10200.0, 10001.0, 10102.0]
    assert out[1, 2, :3].tolist() == [0.0, 10101.0, 10202.0]
    # The last frame of clip 0 must not read the first frame of clip 1.
    assert out[0, 2, 0] == 0.0


def test_online_uses_past_only():
    out = temporal_shift(paddle.to_tensor(encoded(2, 3, 8)), 3, 0.25,
                         'online').numpy().reshape(2, 3, 8)
    assert out[1, :, 0].tolist() == [0.0, 10000.0, 10100.0]
    assert out[1, :, 1].tolist() == [0.0, 10001.0, 10101.0]
    assert out[1, :, 2].tolist() == [10002.0, 10102.0, 10202.0]


def test_none_and_tiny_fold_are_identity():
    x = paddle.to_tensor(encoded(1, 4, 4))
    assert np.array_equal(temporal_shift(x, 4, 0.125, 'none').numpy(),
                          x.numpy())
    # int(4 * 0.125) == 0 channels to move.
    assert np.array_equal(temporal_shift(x, 4, 0.125).numpy(), x.numpy())


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match='mode'):
        temporal_shift(paddle.zeros([4, 8, 1, 1]), 4, 0.125, 'both')


def test_equals_paddle_op_with_folds_swapped():
    """Paddle's op gives fold 1 frame t-1 and fold 2 frame t+1: swapping the
    two folds before and after it gives our bidirectional shift."""
    seg_num, channels, fold = 4, 16, 2
    x = np.random.RandomState(0).rand(2 * seg_num, channels, 3, 3)
    x = x.astype('float32')
    swap = np.r_[fold:2 * fold, 0:fold, 2 * fold:channels]
    theirs = paddle.nn.functional.temporal_shift(
        paddle.to_tensor(x[:, swap]), seg_num, 0.125).numpy()[:, swap]
    ours = temporal_shift(paddle.to_tensor(x), seg_num, 0.125).numpy()
    assert np.array_equal(ours, theirs)
    # Without the swap the first folds differ: Paddle's reads frame t-1,
    # which is what our online mode does.
    direct = paddle.nn.functional.temporal_shift(
        paddle.to_tensor(x), seg_num, 0.125).numpy()
    online = temporal_shift(paddle.to_tensor(x), seg_num, 0.125,
                            'online').numpy()
    assert np.array_equal(direct[:, :fold], online[:, :fold])
    assert not np.array_equal(direct[:, :fold], ours[:, :fold])


def test_gradient_is_the_reverse_shift():
    x = paddle.to_tensor(encoded(1, 3, 8), stop_gradient=False)
    out = temporal_shift(x, 3, 0.125)
    weight = paddle.to_tensor(encoded(1, 3, 8) + 1)
    (out * weight).sum().backward()
    grad = x.grad.numpy().reshape(3, 8)
    w = (encoded(1, 3, 8) + 1).reshape(3, 8)
    # Channel 0 of frame t fed channel 0 of frame t-1.
    assert grad[:, 0].tolist() == [0.0, w[0, 0], w[1, 0]]
    # Channel 1 of frame t fed channel 1 of frame t+1.
    assert grad[:, 1].tolist() == [w[1, 1], w[2, 1], 0.0]
    assert np.array_equal(grad[:, 2:], w[:, 2:])


def test_layer_wraps_function():
    layer = TemporalShift(seg_num=3, shift_ratio=0.25, mode='online')
    x = paddle.to_tensor(encoded(2, 3, 8))
    assert np.array_equal(layer(x).numpy(),
                          temporal_shift(x, 3, 0.25, 'online').numpy())
    assert layer.parameters() == []


def source_frame(frame, channel, fold, mode):
    """The frame whose channel `channel` lands at `frame` (expected_value's rule)."""
    if mode == 'bidirectional' and channel < fold:
        return frame + 1
    if (mode == 'bidirectional' and channel < 2 * fold) or (mode == 'online' and
                                                             channel < fold):
        return frame - 1
    return frame


@pytest.mark.parametrize('mode', ['bidirectional', 'online'])
def test_gradient_sends_each_output_gradient_to_its_source(mode):
    num_clips, seg_num, channels, ratio = 2, 4, 8, 0.25
    fold = int(channels * ratio)
    w = np.random.default_rng(1).standard_normal([num_clips * seg_num, channels, 2, 3],
                                                 dtype=np.float32)
    x = paddle.to_tensor(np.zeros_like(w), stop_gradient=False)
    (temporal_shift(x, seg_num, ratio, mode) * paddle.to_tensor(w)).sum().backward()
    want = np.zeros_like(w)
    for clip in range(num_clips):
        for frame in range(seg_num):
            for channel in range(channels):
                source = source_frame(frame, channel, fold, mode)
                if 0 <= source < seg_num:
                    want[clip * seg_num + source, channel] += w[clip * seg_num + frame,
                                                                channel]
    assert np.array_equal(x.grad.numpy(), want)
