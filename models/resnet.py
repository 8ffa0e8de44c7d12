"""ResNet blocks for frame-wise TSM backbones.

Attribute names (conv1, bn1, ..., downsample.0, downsample.1) match
paddle.vision.models.resnet so ImageNet state dicts load without renaming.
A block may carry a temporal shift; `shift_place` chooses where it acts:
'residual' shifts only the input of the residual branch (the identity path
keeps the unshifted frame), 'inplace' shifts the block input seen by both.
"""
import paddle.nn as nn

SHIFT_PLACES = ('residual', 'inplace')


def _conv_bn(in_channels, out_channels, kernel_size, stride=1):
    conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                     padding=kernel_size // 2, bias_attr=False)
    return conv, nn.BatchNorm2D(out_channels)


class _ShiftedBlock(nn.Layer):
    """Shared forward: optional shift, residual branch, identity, ReLU."""

    def _init_common(self, in_channels, out_channels, stride, shift,
                     shift_place):
        self.shift = shift
        self.shift_place = shift_place
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            conv, bn = _conv_bn(in_channels, out_channels, 1, stride)
            self.downsample = nn.Sequential(conv, bn)

    def forward(self, x):
        if self.shift is None:
            return self.join(x, self.branch(x))
        shifted = self.shift(x)
        return self.join(self.identity_input(x, shifted), self.branch(shifted))

    def identity_input(self, x, shifted):
        """What the identity path reads: the unshifted input for a residual shift, the
        shifted one for an in-place shift."""
        return shifted if self.shift_place == 'inplace' else x

    def join(self, x, branch):
        """relu(branch + identity of x): the end of every block, whatever computed the
        branch (the shift of a clip, or models.online's buffers frame by frame)."""
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(branch + identity)


class BasicBlock(_ShiftedBlock):
    expansion = 1

    def __init__(self, in_channels, planes, stride=1, shift=None,
                 shift_place='residual'):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1, self.bn1 = _conv_bn(in_channels, planes, 3, stride)
        self.conv2, self.bn2 = _conv_bn(planes, out_channels, 3)
        self._init_common(in_channels, out_channels, stride, shift,
                          shift_place)

    def branch(self, x):
        return self.branch_tail(self.bn1(self.conv1(x)))

    def branch_tail(self, x):
        """The residual branch after conv1 and bn1 (models.fused computes those two)."""
        return self.bn2(self.conv2(self.relu(x)))


class BottleneckBlock(_ShiftedBlock):
    expansion = 4

    def __init__(self, in_channels, planes, stride=1, shift=None,
                 shift_place='residual'):
        super().__init__()
        out_channels = planes * self.expansion
        # Stride on the 3x3 conv, as in paddle.vision (ResNet v1.5).
        self.conv1, self.bn1 = _conv_bn(in_channels, planes, 1)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3, stride)
        self.conv3, self.bn3 = _conv_bn(planes, out_channels, 1)
        self._init_common(in_channels, out_channels, stride, shift,
                          shift_place)

    def branch(self, x):
        return self.branch_tail(self.bn1(self.conv1(x)))

    def branch_tail(self, x):
        """The residual branch after conv1 and bn1 (models.fused computes those two)."""
        x = self.relu(self.bn2(self.conv2(self.relu(x))))
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
               shift_place, shift_every=1):
    """One stage (layerK) as nn.Sequential; make_shift() -> layer or None, given to the
    blocks `is_shifted` names."""
    blocks = []
    for i in range(num_blocks):
        shift = make_shift() if is_shifted(i, shift_every) else None
        blocks.append(block(in_channels, planes, stride if i == 0 else 1,
                            shift, shift_place))
        in_channels = planes * block.expansion
    return nn.Sequential(*blocks)
