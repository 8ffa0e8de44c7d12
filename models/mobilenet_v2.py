"""MobileNetV2 (width 1.0) blocks for frame-wise TSM: the light backbone of real-time TSM.

An inverted residual block expands its input with a 1x1 conv (conv1, bn1), filters each
channel with a 3x3 depthwise conv (conv2, bn2) and projects back with a linear 1x1 conv
(conv3, bn3); ReLU6 follows the first two. The first block of the network expands by 1 and
has no conv1. A block adds its input to the projection when it keeps stride and width.

PaddleClas's MobileNetV2, which PP-TSM's is, expands its first block too (by 1: a 1x1 conv
of 32 channels); `expand_all` builds that layout (backbone 'mobilenet_v2_pp').

The shift sits where the original TSM code puts it: on the input of conv1 in every block
that expands and adds its input (ten blocks), the identity path keeping the unshifted frame.
The blocks have the interface of models/resnet.py's (shift, conv1, bn1, branch, branch_tail,
join), so the online step, the inference form and weight conversion treat both alike.
"""
import paddle.nn as nn

from .shift import ShiftedResidual
from .workarounds.conv import Conv2D

# expansion t, output channels c, blocks n, stride of the first s (the paper's table 2)
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


def _conv_bn(in_channels, out_channels, kernel, stride=1, groups=1):
    conv = Conv2D(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2,
                  groups=groups, bias_attr=False)
    return conv, nn.BatchNorm2D(out_channels)


class InvertedResidual(ShiftedResidual):
    """One block; `shift` (a layer or None) acts on the residual branch's input."""

    def __init__(self, in_channels, out_channels, stride, expansion, shift=None,
                 shift_place='residual', expand=None):
        super().__init__()
        hidden = in_channels * expansion
        if expansion != 1 if expand is None else expand:
            self.conv1, self.bn1 = _conv_bn(in_channels, hidden, 1)
        else:
            self.conv1 = self.bn1 = None
        self.conv2, self.bn2 = _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        self.conv3, self.bn3 = _conv_bn(hidden, out_channels, 1)
        self.act = nn.ReLU6()
        self.residual = stride == 1 and in_channels == out_channels
        self.shift = shift
        self.shift_place = shift_place
        self.downsample = None  # a projection shortcut: MobileNetV2 has none

    def branch(self, x):
        if self.conv1 is None:
            return self.bn3(self.conv3(self.act(self.bn2(self.conv2(x)))))
        return self.branch_tail(self.bn1(self.conv1(x)))

    def branch_tail(self, x):
        """The branch after conv1 and bn1 (models.fused computes those two)."""
        x = self.act(self.bn2(self.conv2(self.act(x))))
        return self.bn3(self.conv3(x))

    def join(self, x, branch):
        """branch + x where the block keeps its shape; the projection is linear (no
        activation after the sum)."""
        return x + branch if self.residual else branch


def takes_shift(in_channels, out_channels, stride, expansion):
    """Whether a block of these settings carries the shift: it expands and adds its input."""
    return expansion != 1 and stride == 1 and in_channels == out_channels


def make_blocks(make_shift, shift_place, expand_all=False):
    """The 17 inverted residual blocks in forward order, as nn.Sequential; make_shift() ->
    the shift layer of each block takes_shift names; expand_all: every block has conv1,
    the first one's expanding by 1 (PaddleClas's layout)."""
    blocks, in_channels = [], STEM_CHANNELS
    for expansion, out_channels, count, first_stride in SETTINGS:
        for i in range(count):
            stride = first_stride if i == 0 else 1
            shift = (make_shift() if takes_shift(in_channels, out_channels, stride, expansion)
                     else None)
            blocks.append(InvertedResidual(in_channels, out_channels, stride, expansion,
                                           shift, shift_place, expand_all or None))
            in_channels = out_channels
    return nn.Sequential(*blocks)
