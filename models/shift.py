"""Temporal shift: move a fraction of the channels one frame along time.

Direction follows the TSM paper's reference code: in 'bidirectional' mode the
first fold of channels at frame t holds frame t+1 and the second fold holds
frame t-1; in 'online' mode only the first fold moves, from frame t-1, so no
future frame is needed. `paddle.nn.functional.temporal_shift` uses the
opposite sign for the two folds and its CPU kernel is slower than this
slicing version (see benchmarks/bench_shift.py).

In dynamic-mode training the shift's gradient is the shift the other way (a frame that gave
its fold to frame t+1 receives that fold's gradient back from t+1), computed as such: the
gradient autograd derives from the slices writes each slice's gradient into a zeroed tensor
the size of the whole input and adds them, which cost a fifth of a ResNet-18 training step
on 32x32 frames. Exported graphs see the slicing forward alone.
"""
import paddle
import paddle.nn as nn
from paddle.autograd import PyLayer

SHIFT_MODES = ('bidirectional', 'online', 'none')


def _along_time(fold, seg_num, step):
    """fold [N*T, c, h, w] with frame t holding frame t + step's values (step 1 or -1), zeros
    where that frame is outside the clip, computed on [N, T, c*h*w] rows."""
    _, c, h, w = fold.shape
    frames = paddle.reshape(_dense(fold), [-1, seg_num, c * h * w])
    zeros = paddle.zeros_like(frames[:, :1])
    parts = [frames[:, 1:], zeros] if step == 1 else [zeros, frames[:, :-1]]
    return paddle.reshape(paddle.concat(parts, axis=1), [-1, c, h, w])


def _dense(t):
    """t laid out densely. In Paddle 3's dynamic mode a slice is a strided view, and the CPU
    concat copies a strided input element by element: a fold of a ResNet-50 block at 56x56
    moved along time in 22 ms, 2.5 ms from a dense copy; the block's shift 87 -> 17 ms.
    Paddle 2.6 and static graphs copy slices already."""
    return t.contiguous() if paddle.in_dynamic_mode() and hasattr(t, 'contiguous') else t


def moved_channels(channels, shift_ratio, mode):
    """How many leading channels the shift moves: two folds of int(C * shift_ratio)
    when bidirectional, one when online, none for 'none'."""
    if mode not in SHIFT_MODES:
        raise ValueError(f"mode: expected one of {SHIFT_MODES}, got {mode!r}")
    folds = {'bidirectional': 2, 'online': 1, 'none': 0}[mode]
    return folds * int(channels * shift_ratio)


def shifted_folds(x, seg_num, moved, mode, backwards=False):
    """The first `moved` channels of x [N*T, C, H, W] after the shift, [N*T, moved, H, W]:
    the rest of the channels stay where they are, so callers splice or convolve only these.
    The batch axis is split as [-1, seg_num] (clips never exchange frames, and the batch
    size may be unknown when the graph is exported). `backwards`: each fold moves the other
    way along time (the shift's adjoint, which carries its gradient)."""
    return paddle.concat(_shifted(x, seg_num, moved, mode, backwards), axis=1)


def _shifted(x, seg_num, moved, mode, backwards):
    """The shifted folds of shifted_folds, one tensor each."""
    ahead = -1 if backwards else 1  # where the first fold takes its values from
    if mode == 'bidirectional':
        fold = moved // 2
        return [_along_time(x[:, :fold], seg_num, ahead),
                _along_time(x[:, fold:moved], seg_num, -ahead)]
    return [_along_time(x[:, :moved], seg_num, -ahead)]


def _spliced(x, seg_num, moved, mode, backwards=False):
    return paddle.concat(_shifted(x, seg_num, moved, mode, backwards) + [x[:, moved:]], axis=1)


class _Shift(PyLayer):
    """The shift with its adjoint as gradient (see the module doc)."""

    @staticmethod
    def forward(ctx, x, seg_num, moved, mode):
        ctx.shape = (seg_num, moved, mode)
        return _spliced(x, seg_num, moved, mode)

    @staticmethod
    def backward(ctx, grad):
        return _spliced(grad, *ctx.shape, backwards=True)


def temporal_shift(x, seg_num, shift_ratio=0.125, mode='bidirectional'):
    """Shift channels of x [N*T, C, H, W] along time (T = seg_num).

    fold = int(C * shift_ratio). Only the moved folds are reshaped along time:
    reshaping the whole tensor made oneDNN reorder all of it.
    """
    moved = moved_channels(x.shape[1], shift_ratio, mode)
    if moved == 0:
        return x
    if paddle.in_dynamic_mode() and not x.stop_gradient:
        return _Shift.apply(x, seg_num, moved, mode)
    return _spliced(x, seg_num, moved, mode)


def paddle_order_shift(x, seg_num, shift_ratio):
    """`paddle.nn.functional.temporal_shift` of x [N*T, C, H, W] (PP-TSMv2's shift), written
    with slices so that every engine reads its export: channels [0, c1) take frame t-1's,
    [c1, c2) frame t+1's, with c1 = int(C * shift_ratio) and c2 = int(C * 2 * shift_ratio)
    (which is not always 2 * c1)."""
    channels = x.shape[1]
    c1, c2 = int(channels * shift_ratio), int(channels * 2 * shift_ratio)
    parts = [_along_time(x[:, :c1], seg_num, -1)] if c1 else []
    if c2 > c1:
        parts.append(_along_time(x[:, c1:c2], seg_num, 1))
    return paddle.concat(parts + [x[:, c2:]], axis=1) if parts else x


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


class ShiftedResidual(nn.Layer):
    """A residual block whose branch may read its input shifted (`shift`, a layer or None):
    subclasses set shift and shift_place and define branch(x) and join(x, branch), which the
    online step (models.online) also calls frame by frame."""

    def forward(self, x):
        if self.shift is None:
            return self.join(x, self.branch(x))
        shifted = self.shift(x)
        return self.join(self.identity_input(x, shifted), self.branch(shifted))

    def identity_input(self, x, shifted):
        """What the identity path reads: the unshifted input for a residual shift, the
        shifted one for an in-place shift."""
        return shifted if self.shift_place == 'inplace' else x
