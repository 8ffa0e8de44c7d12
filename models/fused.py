"""The inference form of a TSM: each residual shift merged into the convolution after it.

A residual block computes bn1(conv1(shift(x))). The convolution is linear in its input
channels and the shift only moves the first `moved` channels (two folds, or one online), so

    conv1(shift(x)) = conv1(x with the moved channels zeroed) + conv1_moved(shifted folds)

where conv1_moved keeps the weights of the moved channels. The block then reads x as it comes
out of the previous block and never builds the shifted copy of it: under oneDNN that copy
(slicing and splicing channels of a blocked layout) took a third of an exported ResNet-50's
time, while the second convolution adds a quarter of conv1's multiply-adds (moved/C of them).
BatchNorm is folded into the two convolutions' weights and bias, since Paddle's fusion passes
cannot fold it into a sum. Only for inference: the form has other parameters than the model.

PP-LCNetV2 (PP-TSMv2) has no shifted residual blocks; its inference form is its
re-parameterisable blocks folded into one depthwise conv each (models.pplcnet_v2).
"""
import copy

import numpy as np
import paddle.nn as nn

from .pplcnet_v2 import fold_all
from .shift import moved_channels, shifted_folds


def _conv_like(conv, in_channels, weight, bias):
    layer = nn.Conv2D(in_channels, weight.shape[0], weight.shape[2:], stride=conv._stride,
                      padding=conv._padding, dilation=conv._dilation,
                      bias_attr=None if bias is not None else False)
    layer.weight.set_value(weight.astype(np.float32))
    if bias is not None:
        layer.bias.set_value(bias.astype(np.float32))
    return layer


class ShiftConv(nn.Layer):
    """bn(conv(shift(x))) of one block, computed without the shifted copy of x."""

    def __init__(self, conv, bn, shift):
        super().__init__()
        if conv._groups != 1 or conv.bias is not None:
            raise ValueError('ShiftConv: expected a conv without groups and bias before the BN')
        weight = conv.weight.numpy().astype(np.float64)
        scale = bn.weight.numpy() / np.sqrt(bn._variance.numpy().astype(np.float64)
                                            + bn._epsilon)
        weight = weight * scale[:, None, None, None]
        bias = bn.bias.numpy() - bn._mean.numpy() * scale
        self.seg_num, self.mode = shift.seg_num, shift.mode
        self.moved = moved_channels(weight.shape[1], shift.shift_ratio, shift.mode)
        kept = weight.copy()
        kept[:, :self.moved] = 0
        self.whole = _conv_like(conv, weight.shape[1], kept, bias)
        self.moved_conv = _conv_like(conv, self.moved, weight[:, :self.moved], None)

    def forward(self, x):
        return self.with_shifted(x, shifted_folds(x, self.seg_num, self.moved, self.mode))

    def with_shifted(self, x, shifted):
        """The result when the moved channels of x hold `shifted` [N, moved, h, w]: the online
        step passes the previous frame's channels it keeps in its buffer."""
        return self.whole(x) + self.moved_conv(shifted)


def merged_conv(block):
    """The ShiftConv of `block` when it shifts its residual branch and the shift moves some
    channels, else None (no shift, or an in-place shift: its identity path takes the
    shifted copy too, so the copy stays)."""
    shift = block.shift
    if shift is None or block.shift_place != 'residual':
        return None
    if moved_channels(block.conv1.weight.shape[1], shift.shift_ratio, shift.mode) == 0:
        return None
    return ShiftConv(block.conv1, block.bn1, shift)


def fuse_shifts(model):
    """A copy of `model` (a TSM) in its inference form: in every block merged_conv takes,
    conv1 and bn1 become one ShiftConv; the other blocks stay as they are. PP-LCNetV2's
    re-parameterisable blocks are folded."""
    fused = copy.deepcopy(model)
    fused.eval()
    fold_all(fused)
    for block in (b.layer for b in fused.blocks()):
        merged = merged_conv(block)
        if merged is not None:
            block.conv1, block.bn1, block.shift = merged, nn.Identity(), None
    return fused
