"""Temporal shift: move a fraction of the channels one frame along time.

Direction follows the TSM paper's reference code: in 'bidirectional' mode the
first fold of channels at frame t holds frame t+1 and the second fold holds
frame t-1; in 'online' mode only the first fold moves, from frame t-1, so no
future frame is needed. `paddle.nn.functional.temporal_shift` uses the
opposite sign for the two folds and its CPU kernel is slower than this
slicing version (see benchmarks/bench_shift.py).
"""
import paddle
import paddle.nn as nn

SHIFT_MODES = ('bidirectional', 'online', 'none')


def _from_next(x):
    # x: [N, T, c, H, W]; frame t gets frame t+1, the last frame gets zeros.
    return paddle.concat([x[:, 1:], paddle.zeros_like(x[:, :1])], axis=1)


def _from_previous(x):
    # frame t gets frame t-1, the first frame gets zeros.
    return paddle.concat([paddle.zeros_like(x[:, :1]), x[:, :-1]], axis=1)


def temporal_shift(x, seg_num, shift_ratio=0.125, mode='bidirectional'):
    """Shift channels of x [N*T, C, H, W] along time (T = seg_num).

    fold = int(C * shift_ratio). Clips of a batch never exchange frames:
    the batch axis is split as [-1, seg_num] so the batch size may be
    unknown when the graph is exported.
    """
    if mode == 'none':
        return x
    if mode not in SHIFT_MODES:
        raise ValueError(f"mode: expected one of {SHIFT_MODES}, got {mode!r}")
    _, c, h, w = x.shape
    fold = int(c * shift_ratio)
    if fold == 0:
        return x
    clips = paddle.reshape(x, [-1, seg_num, c, h, w])
    if mode == 'bidirectional':
        parts = [_from_next(clips[:, :, :fold]),
                 _from_previous(clips[:, :, fold:2 * fold]),
                 clips[:, :, 2 * fold:]]
    else:
        parts = [_from_previous(clips[:, :, :fold]), clips[:, :, fold:]]
    out = paddle.concat(parts, axis=2)
    return paddle.reshape(out, [-1, c, h, w])


class TemporalShift(nn.Layer):
    """Parameter-free layer wrapper, so a block can hold the shift it uses."""

    def __init__(self, seg_num, shift_ratio, mode):
        super().__init__()
        self.seg_num = seg_num
        self.shift_ratio = shift_ratio
        self.mode = mode

    def forward(self, x):
        return temporal_shift(x, self.seg_num, self.shift_ratio, self.mode)

    def extra_repr(self):
        return (f'seg_num={self.seg_num}, shift_ratio={self.shift_ratio}, '
                f'mode={self.mode}')
