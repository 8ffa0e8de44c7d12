"""ResNet blocks for frame-wise TSM backbones.

Attribute names (conv1, bn1, ..., downsample.0, downsample.1) match
paddle.vision.models.resnet so ImageNet state dicts load without renaming.
A block may carry a temporal shift; `shift_place` chooses where it acts:
'residual' shifts only the input of the residual branch (the identity path
keeps the unshifted frame), 'inplace' shifts the block input seen by both.

`backbone` 'resnet_vd' is ResNet-vd (He et al., "Bag of Tricks", the PP-TSM backbone):
a strided shortcut first averages 2x2 pixels and then applies a stride-1 1x1 conv, instead
of a strided 1x1 conv that reads one pixel in four, and every ReLU is a leaky ReLU
(slope 0.01, as PaddleVideo's ResNetTweaksTSM has it). Its three-conv stem is in models/tsm.py.
"""
import paddle
import paddle.nn as nn

from .shift import ShiftedResidual
from .workarounds.conv import Conv2D

SHIFT_PLACES = ('residual', 'inplace')
BACKBONES = ('resnet', 'resnet_vd')
LEAKY_SLOPE = 0.01  # paddle.nn.functional.leaky_relu's default, which PP-TSM uses


class LeakyReLU(nn.Layer):
    """leaky_relu(x), computed as max(x, slope * x) (the same function for a slope below 1,
    bit for bit): Paddle Inference 3.3 (PIR, oneDNN) crashes the process in the pass that
    fuses a convolution with the leaky_relu op after it (conv_activation_onednn_fuse_pass),
    and no pass fuses this form."""

    def __init__(self, slope):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        return paddle.maximum(x, x * self.slope)


def activation(backbone):
    """The activation layer of a backbone's stem and blocks."""
    return LeakyReLU(LEAKY_SLOPE) if backbone == 'resnet_vd' else nn.ReLU()


def conv_bn(in_channels, out_channels, kernel_size, stride=1):
    conv = Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2, bias_attr=False)
    return conv, nn.BatchNorm2D(out_channels)


def _shortcut(in_channels, out_channels, stride, backbone):
    """The projection of a block's identity path: a 1x1 conv and BN, named downsample.0 and
    downsample.1 in both backbones. ResNet-vd pools before a stride-1 conv when the block
    strides; the pool has no parameters, so it is named apart and the names stay those of
    paddle.vision's shortcut."""
    if backbone == 'resnet_vd' and stride != 1:
        conv, bn = conv_bn(in_channels, out_channels, 1)
        # ceil_mode: an odd side keeps its last row and column, averaged over what is there,
        # so the shortcut's size equals the strided 3x3 conv's output.
        pool = nn.AvgPool2D(kernel_size=2, stride=stride, ceil_mode=True)
        return nn.Sequential(('pool', pool), ('0', conv), ('1', bn))
    conv, bn = conv_bn(in_channels, out_channels, 1, stride)
    return nn.Sequential(conv, bn)


class _ShiftedBlock(ShiftedResidual):
    """Shared by the ResNet blocks: the shortcut, and the join with its activation."""

    def _init_common(self, in_channels, out_channels, stride, shift,
                     shift_place, backbone):
        self.shift = shift
        self.shift_place = shift_place
        self.act = activation(backbone)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = _shortcut(in_channels, out_channels, stride, backbone)

    def join(self, x, branch):
        """act(branch + identity of x): the end of every block, whatever computed the
        branch (the shift of a clip, or models.online's buffers frame by frame)."""
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(branch + identity)


class BasicBlock(_ShiftedBlock):
    expansion = 1

    def __init__(self, in_channels, planes, stride=1, shift=None,
                 shift_place='residual', backbone='resnet'):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1, self.bn1 = conv_bn(in_channels, planes, 3, stride)
        self.conv2, self.bn2 = conv_bn(planes, out_channels, 3)
        self._init_common(in_channels, out_channels, stride, shift,
                          shift_place, backbone)

    def branch(self, x):
        return self.branch_tail(self.bn1(self.conv1(x)))

    def branch_tail(self, x):
        """The residual branch after conv1 and bn1 (models.fused computes those two)."""
        return self.bn2(self.conv2(self.act(x)))


class BottleneckBlock(_ShiftedBlock):
    expansion = 4

    def __init__(self, in_channels, planes, stride=1, shift=None,
                 shift_place='residual', backbone='resnet'):
        super().__init__()
        out_channels = planes * self.expansion
        # Stride on the 3x3 conv, as in paddle.vision (ResNet v1.5) and ResNet-vd.
        self.conv1, self.bn1 = conv_bn(in_channels, planes, 1)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3, stride)
        self.conv3, self.bn3 = conv_bn(planes, out_channels, 1)
        self._init_common(in_channels, out_channels, stride, shift,
                          shift_place, backbone)

    def branch(self, x):
        return self.branch_tail(self.bn1(self.conv1(x)))

    def branch_tail(self, x):
        """The residual branch after conv1 and bn1 (models.fused computes those two)."""
        x = self.act(self.bn2(self.conv2(self.act(x))))
        return self.bn3(self.conv3(x))


# depth -> (block type, blocks per stage)
RESNET_SPECS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (BottleneckBlock, (3, 4, 6, 3)),
    101: (BottleneckBlock, (3, 4, 23, 3)),
    152: (BottleneckBlock, (3, 8, 36, 3)),
}


def is_shifted(index, shift_every):
    """Whether block `index` of a stage carries a shift: every block with shift_every 1
    (the paper's 'blockres' placement), blocks 0, 2, 4... with 2 (the original code's
    ResNet-101 recipe). The one rule for it: models and weight conversion both ask here."""
    return index % shift_every == 0


def make_stage(block, in_channels, planes, num_blocks, stride, make_shift,
               shift_place, shift_every=1, backbone='resnet'):
    """One stage (layerK) as nn.Sequential; make_shift() -> layer or None, given to the
    blocks `is_shifted` names."""
    blocks = []
    for i in range(num_blocks):
        shift = make_shift() if is_shifted(i, shift_every) else None
        blocks.append(block(in_channels, planes, stride if i == 0 else 1,
                            shift, shift_place, backbone))
        in_channels = planes * block.expansion
    return nn.Sequential(*blocks)
