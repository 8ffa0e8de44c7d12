"""Online TSM: one 2D CNN pass per frame, the temporal shift carried by buffers.

With shift_mode='online' each shifted block (every block, or every
shift_every-th of a stage) replaces the first `moved` channels of its input at
frame t by those of frame t-1 (zeros at t = 0). Streaming, such a block
therefore only needs the first `moved` channels of the previous frame's input:
each step swaps them in from a buffer and keeps the current ones for the next
frame; an unshifted block needs no buffer. Fed the frames of a clip one by
one, the per-frame logits equal `TSM.frame_scores` on the whole clip.

`OnlineStep` is that single step as a layer whose buffers are explicit inputs
and outputs, so it exports to a static inference model; `OnlineTSM` holds the
buffers between calls and averages the per-frame logits into a clip score.
"""
import collections
import math

import paddle
import paddle.nn as nn

from .fused import ShiftConv, merged_conv
from .shift import moved_channels
from .tsm import TSM


def online_blocks(model):
    """The residual blocks of layer1..layer4 in forward order, of a TSM built with
    shift_mode='online': a streaming step has no future frame. Its unshifted blocks
    (shift_every > 1) stream as plain 2D blocks."""
    if not isinstance(model, TSM):
        raise TypeError(f'expected a models.TSM, got {type(model).__name__}')
    if model.shift_mode != 'online':
        raise ValueError(f"online inference needs a TSM built with shift_mode='online' "
                         f"(uni-directional shift); this model has shift_mode "
                         f"{model.shift_mode!r}")
    return [block.layer for block in model.blocks()]


def moved_channels_of(block):
    """Channels the block takes from the previous frame, as temporal_shift
    computes them: int(input channels * shift_ratio); 0 for an unshifted block."""
    if block.shift is None:
        return 0
    in_channels = block.conv1.weight.shape[1]
    return moved_channels(in_channels, block.shift.shift_ratio, block.shift.mode)


def _block_step(block, moved, x, buffer, merged=None):
    """One frame through `block`: the first `moved` channels come from `buffer`
    (the previous frame's); returns (output, this frame's first moved channels).
    With moved 0 the block is plain (temporal_shift leaves x as is). `merged`, the
    block's models.fused.ShiftConv, convolves the buffer apart instead of splicing it.

    The concat copies the block input once, the cost of streaming over a plain
    2D CNN. Writing the buffer into x in place and restoring it for the
    identity path was slower in Paddle's dynamic mode (65.1 against 60.7 ms
    per ResNet-50 frame on 2 cores; the plain 2D net: 55.6 ms).
    """
    if moved == 0:
        return block(x), None
    # A copy, not a view: a view would keep the whole block input alive.
    new_buffer = x[:, :moved].clone()
    if merged is not None:
        return block.join(x, block.branch_tail(merged.with_shifted(x, buffer))), new_buffer
    shifted = paddle.concat([buffer, x[:, moved:]], axis=1)
    return block.join(block.identity_input(x, shifted), block.branch(shifted)), new_buffer


class OnlineStep(nn.Layer):
    """forward(frame [N, 3, H, W], buffers) -> (logits [N, classes], new_buffers),
    buffers a list of tensors [N, moved, h, w]. (A list rather than *buffers:
    paddle.jit cannot export a variadic forward.)

    Holds the TSM itself (same layers, same weights); buffers follow the order
    of `online_blocks`. Blocks with moved 0 (unshifted, or a shift_ratio too small
    for their channels) shift nothing and get no buffer.
    """

    def __init__(self, model, merge=False):
        super().__init__()
        self.blocks = online_blocks(model)
        self.moved = [moved_channels_of(b) for b in self.blocks]
        self.tsm = model
        # merge: each residual shift merged into its conv1 (models.fused), for export;
        # new layers with BN folded in, so only for a model in eval mode.
        self.merged = nn.LayerList(
            [merged_conv(b) or nn.Identity() for b in self.blocks] if merge else [])

    def forward(self, frame, buffers):
        expected = sum(m > 0 for m in self.moved)
        if len(buffers) != expected:
            raise ValueError(f'OnlineStep: expected {expected} buffers (one per shifted '
                             f'block), got {len(buffers)}')
        x = self.tsm.frame_stem(frame)
        pending = list(buffers)
        new_buffers = []
        for k, (block, moved) in enumerate(zip(self.blocks, self.moved)):
            merged = self.merged[k] if self.merged else None
            x, buffer = _block_step(block, moved, x, pending.pop(0) if moved else None,
                                    merged if isinstance(merged, ShiftConv) else None)
            if moved:
                new_buffers.append(buffer)
        return self.tsm.head(x), new_buffers

    def buffer_shapes(self, frame_size, batch_size=1):
        """[N, moved, h, w] of each buffer for frames of `frame_size` (side or
        (H, W)), read from one dry pass of the stem and blocks."""
        height, width = _pair(frame_size)
        m = self.tsm
        shapes = []
        was_training = m.training
        m.eval()  # a training-mode pass would move the BatchNorm running statistics
        with paddle.no_grad():
            x = m.frame_stem(paddle.zeros([1, 3, height, width]))
            for block, moved in zip(self.blocks, self.moved):
                buffer = None
                if moved:
                    shapes.append([batch_size, moved, x.shape[2], x.shape[3]])
                    buffer = paddle.zeros([1, moved, x.shape[2], x.shape[3]])
                x, _ = _block_step(block, moved, x, buffer)
        if was_training:
            m.train()
        return shapes


def _pair(frame_size):
    if isinstance(frame_size, int):
        return frame_size, frame_size
    height, width = frame_size
    return int(height), int(width)


class OnlineTSM:
    """Streaming engine: `step(frames [N, 3, H, W])` -> this frame's logits
    [N, classes]; `clip_scores()` -> mean logits over the frames seen, or over
    the last `window` frames when `window` is set; `reset()` between videos.

    The model must be in eval mode: a single frame is no batch to take
    BatchNorm statistics from, and dropout would make frames disagree with
    the offline model.
    """

    def __init__(self, model, frame_size, batch_size=1, window=None):
        if window is not None and window < 1:
            raise ValueError(f'window: expected None or an int >= 1, got {window!r}')
        self.step_layer = OnlineStep(model)
        self.frame_size = _pair(frame_size)
        self.batch_size = batch_size
        self.window = window
        self.shapes = self.step_layer.buffer_shapes(self.frame_size, batch_size)
        self.reset()

    def reset(self):
        """Zero the buffers (frame 0 sees zeros, as in the offline shift) and
        forget the frames seen."""
        self.buffers = [paddle.zeros(s, dtype='float32') for s in self.shapes]
        # Only a window keeps frames; otherwise a running sum, so an endless camera stream
        # holds one [N, classes] tensor however long it runs.
        self.recent = collections.deque(maxlen=self.window) if self.window else None
        self.total = None
        self.num_frames = 0

    def buffer_bytes(self):
        return sum(4 * math.prod(s) for s in self.shapes)

    @paddle.no_grad()
    def step(self, frames):
        """Logits of one frame per stream, frames float32 [N, 3, H, W]."""
        expected = [self.batch_size, 3, *self.frame_size]
        if list(frames.shape) != expected:
            raise ValueError(f'OnlineTSM.step: expected frames of shape {expected}, '
                             f'got {list(frames.shape)}')
        if self.step_layer.tsm.training:
            raise RuntimeError('OnlineTSM.step: call model.eval() first (BatchNorm must use '
                               'its running statistics)')
        logits, self.buffers = self.step_layer(frames, self.buffers)
        if self.recent is not None:
            self.recent.append(logits)
        else:
            self.total = logits if self.total is None else self.total + logits
        self.num_frames += 1
        return logits

    def clip_scores(self):
        """Running clip prediction [N, classes]: the mean of the per-frame logits."""
        if self.num_frames == 0:
            raise RuntimeError('OnlineTSM.clip_scores: no frame seen since reset()')
        if self.window is None:
            return self.total / self.num_frames
        return paddle.stack(list(self.recent)).mean(axis=0)
