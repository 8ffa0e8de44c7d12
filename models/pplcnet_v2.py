"""PP-LCNetV2 (width 1.0), the CPU backbone of PaddleVideo's PP-TSMv2.

The network is a stem (a 3x3 conv of stride 2, then a depthwise-separable block) and four
stages of depthwise-separable blocks: a depthwise conv (kernel 3 or 5), optionally SE, then
a pointwise conv (or two, through half the output channels, in stage 3); each conv has a BN
and a ReLU. The first block of a stage strides 2 and doubles the channels. In stages 3 and 4
the depthwise conv is re-parameterisable: in training, depthwise convs of kernel 5, 3 and 1
(1 left out where the block strides), each with its BN, are summed before the ReLU; for
inference their sum is one biased 5x5 depthwise conv (`RepBlock.fold`), since a BN is affine
and a smaller kernel is a zero-padded 5x5. Stage 4's blocks that keep their shape add their
input.

PP-TSMv2 shifts once, the stream between stages 2 and 3, with `paddle_order_shift`, after an
optional temporal attention (`TemporalAttention`) that scales each frame by a weight learned
from the frames' mean activations. The head is an average pool, a 1x1 conv widening to 1280
channels (no BN, no bias), a ReLU, dropout and the classifier.

Parameter names follow PaddleVideo's backbone (stages.2.0.dw_conv_list.0.conv.weight,
stages.3.1.pw_conv.bn._mean, last_conv.weight, fc.weight), with the stem as stem_blocks.*
(TSM.frame_stem is a method) and without the unused plain conv PaddleVideo keeps beside a
re-parameterisable block's branches (models/weights/lcnet.py maps the names).
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.nn.initializer import KaimingNormal

from .shift import paddle_order_shift
from .workarounds.conv import Conv2D

# per stage: input channels, depthwise kernel, split pointwise, re-parameterisable
# depthwise, SE, shortcut; blocks per stage
STAGES = ((64, 3, False, False, False, False), (128, 3, False, False, False, False),
          (256, 5, True, True, True, False), (512, 5, False, True, False, True))
DEPTHS = (2, 2, 6, 2)
STEM_CHANNELS = (32, 64)
LAST_CHANNELS = 1280  # the head's 1x1 conv widens the 1024 channels of stage 4 to these
SHIFTED_STAGE = 2  # the shift (and the attention) acts on the input of stages[2]


class ConvBN(nn.Layer):
    """conv (no bias), BN and, when `act`, a ReLU; names conv.* and bn.*."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = Conv2D(in_channels, out_channels, kernel, stride=stride,
                           padding=(kernel - 1) // 2, groups=groups,
                           weight_attr=paddle.ParamAttr(initializer=KaimingNormal()),
                           bias_attr=False)
        self.bn = nn.BatchNorm2D(out_channels)
        self.act = nn.ReLU() if act else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x if self.act is None else self.act(x)


class SE(nn.Layer):
    """Squeeze-and-excitation: each channel scaled by a sigmoid of the pooled channels
    through a bottleneck of a quarter of them."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2D(channels, channels // 4, 1)
        self.conv2 = nn.Conv2D(channels // 4, channels, 1)

    def forward(self, x):
        w = F.adaptive_avg_pool2d(x, 1)
        return x * F.sigmoid(self.conv2(F.relu(self.conv1(w))))


class RepBlock(nn.Layer):
    """One depthwise-separable block (see the module doc); dw_conv_list holds the
    re-parameterisable branches, dw_conv the plain depthwise ConvBN, pw_conv (or pw_conv_1
    and pw_conv_2) the pointwise convs."""

    def __init__(self, in_channels, out_channels, stride, kernel, split_pw=False,
                 use_rep=False, use_se=False, use_shortcut=False):
        super().__init__()
        self.kernel = kernel
        self.shortcut = use_shortcut and stride == 1 and in_channels == out_channels
        self.folded = None
        if use_rep:
            self.dw_conv_list = nn.LayerList([
                ConvBN(in_channels, in_channels, k, stride, groups=in_channels, act=False)
                for k in range(kernel, 0, -2) if k > 1 or stride == 1])
            self.dw_conv = None
        else:
            self.dw_conv_list = None
            self.dw_conv = ConvBN(in_channels, in_channels, kernel, stride, groups=in_channels)
        self.se = SE(in_channels) if use_se else None
        if split_pw:
            self.pw_conv_1 = ConvBN(in_channels, out_channels // 2, 1)
            self.pw_conv_2 = ConvBN(out_channels // 2, out_channels, 1)
            self.pw_conv = None
        else:
            self.pw_conv = ConvBN(in_channels, out_channels, 1)

    def depthwise(self, x):
        if self.dw_conv is not None:
            return self.dw_conv(x)
        if self.folded is not None:
            return F.relu(self.folded(x))
        y = self.dw_conv_list[0](x)
        for branch in self.dw_conv_list[1:]:
            y = y + branch(x)
        return F.relu(y)

    def forward(self, x):
        y = self.depthwise(x)
        if self.se is not None:
            y = self.se(y)
        y = self.pw_conv(y) if self.pw_conv is not None else self.pw_conv_2(self.pw_conv_1(y))
        return x + y if self.shortcut else y

    def fold(self):
        """Replace the re-parameterisable branches by the one biased depthwise conv that
        computes their sum (evaluation only: the BNs' running statistics are folded in)."""
        if self.dw_conv_list is None or self.folded is not None:
            return
        first = self.dw_conv_list[0].conv
        channels = first.weight.shape[0]
        weight = paddle.zeros([channels, 1, self.kernel, self.kernel], 'float64')
        bias = paddle.zeros([channels], 'float64')
        for branch in self.dw_conv_list:
            bn = branch.bn
            scale = bn.weight.astype('float64') / paddle.sqrt(
                bn._variance.astype('float64') + bn._epsilon)
            k = branch.conv.weight.shape[-1]
            pad = (self.kernel - k) // 2
            taps = F.pad(branch.conv.weight.astype('float64'), [pad, pad, pad, pad])
            weight += taps * scale.reshape([-1, 1, 1, 1])
            bias += bn.bias.astype('float64') - bn._mean.astype('float64') * scale
        folded = nn.Conv2D(channels, channels, self.kernel, stride=first._stride,
                           padding=(self.kernel - 1) // 2, groups=channels)
        folded.weight.set_value(weight.astype('float32'))
        folded.bias.set_value(bias.astype('float32'))
        self.folded = folded
        self.dw_conv_list = None


class TemporalAttention(nn.Layer):
    """Each frame scaled by sigmoid(fc(the frames' mean activations)): fc mixes the seg_num
    means of a clip (PaddleVideo's GlobalAttention, its parameters named fc.*)."""

    def __init__(self, seg_num):
        super().__init__()
        self.seg_num = seg_num
        self.fc = nn.Linear(seg_num, seg_num)

    def forward(self, x):
        _, c, h, w = x.shape
        frames = paddle.reshape(x, [-1, self.seg_num, c * h * w])
        weights = F.sigmoid(self.fc(paddle.mean(frames, axis=2)))
        frames = frames * paddle.unsqueeze(weights, 2)
        return paddle.reshape(frames, [-1, c, h, w])


def make_stem():
    """The stem: ConvBN 3 -> 32 of stride 2, then a depthwise-separable block 32 -> 64."""
    return nn.Sequential(ConvBN(3, STEM_CHANNELS[0], 3, 2),
                         RepBlock(STEM_CHANNELS[0], STEM_CHANNELS[1], 1, 3))


def make_stages():
    stages = []
    for (channels, kernel, split_pw, use_rep, use_se, use_shortcut), depth in zip(STAGES, DEPTHS):
        stages.append(nn.Sequential(*[
            RepBlock(channels if i == 0 else 2 * channels, 2 * channels, 2 if i == 0 else 1,
                     kernel, split_pw, use_rep, use_se, use_shortcut) for i in range(depth)]))
    return nn.LayerList(stages)


def shifted_stream(x, seg_num, shift_ratio, attention):
    """What stage 3 reads: the stream after the attention (a layer or None) and the shift
    (shift_ratio 0: no shift, TSN)."""
    if attention is not None:
        x = attention(x)
    return paddle_order_shift(x, seg_num, shift_ratio) if shift_ratio else x


def fold_all(layer):
    """Fold every re-parameterisable block of `layer` (RepBlock.fold)."""
    for sub in layer.sublayers():
        if isinstance(sub, RepBlock):
            sub.fold()
