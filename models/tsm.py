"""TSM: a 2D CNN (a ResNet or MobileNetV2) applied per frame, temporal shift inside the
residual blocks, clip score = mean of the per-frame logits."""
import collections

import paddle
import paddle.nn as nn

from . import mobilenet_v2, pplcnet_v2
from .resnet import (BACKBONES as RESNET_BACKBONES, RESNET_SPECS, SHIFT_PLACES,
                     BottleneckBlock, activation, conv_bn, make_stage)
from .shift import SHIFT_MODES, TemporalShift
from .workarounds.conv import Conv2D


# One residual block of a TSM: its parameter prefix ('layer2.0'), its position in its
# stage (what is_shifted decides on) and the layer.
ResidualBlock = collections.namedtuple('ResidualBlock', 'name index layer')

# mobilenet_v2_pp: PaddleClas's MobileNetV2 (PP-TSM's), whose first block expands too.
MOBILENETS = ('mobilenet_v2', 'mobilenet_v2_pp')
# pplcnet_v2: PaddleVideo's PP-TSMv2, one shift before its third stage (models/pplcnet_v2.py).
LCNET = 'pplcnet_v2'
BACKBONES = RESNET_BACKBONES + MOBILENETS + (LCNET,)
ONE_SIZE = MOBILENETS + (LCNET,)
# MobileNetV2 and PP-LCNetV2 are built at one size: MODEL.depth, a ResNet setting, keeps its
# default there.
DEFAULT_DEPTH = 50

# The stem of each backbone before its max-pool: (conv name, BN name, in channels, out
# channels, kernel, stride) in forward order, each conv followed by its BN and activation.
# paddle.vision's ResNet has one 7x7 conv; ResNet-vd (PP-TSM's conv1_1..conv1_3) three 3x3
# convs, which see the same 7x7 field at less cost.
STEMS = {
    'resnet': [('conv1', 'bn1', 3, 64, 7, 2)],
    'resnet_vd': [('conv1_1', 'bn1_1', 3, 32, 3, 2), ('conv1_2', 'bn1_2', 32, 32, 3, 1),
                  ('conv1_3', 'bn1_3', 32, 64, 3, 1)],
    'mobilenet_v2': [('conv1', 'bn1', 3, mobilenet_v2.STEM_CHANNELS, 3, 2)],
}
STEMS['mobilenet_v2_pp'] = STEMS['mobilenet_v2']


def check_args(depth, shift_mode, shift_place, shift_ratio, shift_every,
                seg_num, num_classes, dropout, backbone='resnet', temporal_attention=False):
    if depth not in RESNET_SPECS:
        raise ValueError(f"depth: expected one of {sorted(RESNET_SPECS)}, "
                         f"got {depth!r}")
    if backbone not in BACKBONES:
        raise ValueError(f"backbone: expected one of {BACKBONES}, got {backbone!r}")
    if backbone in ONE_SIZE and depth != DEFAULT_DEPTH:
        raise ValueError(f"depth: sizes ResNets; backbone {backbone!r} is built at one size, "
                         f"so leave depth at its default {DEFAULT_DEPTH} (got {depth!r})")
    if backbone in MOBILENETS and shift_every != 1:
        # Its shifted blocks are fixed: those that expand and add their input.
        raise ValueError(f"shift_every: backbone {backbone!r} shifts its ten residual "
                         f"blocks; expected 1, got {shift_every!r}")
    _check_lcnet(backbone, shift_mode, shift_place, shift_every, temporal_attention)
    vd_depths = sorted(d for d, (block, _) in RESNET_SPECS.items() if block is BottleneckBlock)
    if backbone == 'resnet_vd' and depth not in vd_depths:
        # PaddleVideo's ResNet-18/34-vd is another layout (a projection in every first
        # block, no pooled shortcut), and no published TSM uses it.
        raise ValueError(f"depth: backbone 'resnet_vd' is built with depth {vd_depths}, "
                         f"got {depth!r}")
    if shift_mode not in SHIFT_MODES:
        raise ValueError(f"shift_mode: expected one of {SHIFT_MODES}, "
                         f"got {shift_mode!r}")
    if shift_place not in SHIFT_PLACES:
        raise ValueError(f"shift_place: expected one of {SHIFT_PLACES}, "
                         f"got {shift_place!r}")
    if not 0 < shift_ratio <= 0.5:
        raise ValueError(f"shift_ratio: expected a value in (0, 0.5], "
                         f"got {shift_ratio!r}")
    if not (isinstance(shift_every, int) and not isinstance(shift_every, bool)
            and shift_every >= 1):
        raise ValueError(f"shift_every: expected an int >= 1, "
                         f"got {shift_every!r}")
    if not (isinstance(seg_num, int) and seg_num >= 1):
        raise ValueError(f"seg_num: expected an int >= 1, got {seg_num!r}")
    if not (isinstance(num_classes, int) and num_classes >= 1):
        raise ValueError(f"num_classes: expected an int >= 1, "
                         f"got {num_classes!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout: expected a value in [0, 1), "
                         f"got {dropout!r}")


def _check_lcnet(backbone, shift_mode, shift_place, shift_every, temporal_attention):
    if not isinstance(temporal_attention, bool):
        raise ValueError(f"temporal_attention: expected true or false, "
                         f"got {temporal_attention!r}")
    if temporal_attention and backbone != LCNET:
        raise ValueError(f"temporal_attention: is PP-TSMv2's (backbone {LCNET!r}); backbone "
                         f"{backbone!r} has none, so leave it false")
    if backbone != LCNET:
        return
    # One shift of the stream before the third stage, in both directions, as PP-TSMv2's.
    fixed = {'shift_place': (shift_place, 'residual'), 'shift_every': (shift_every, 1)}
    for key, (value, default) in fixed.items():
        if value != default:
            raise ValueError(f"{key}: backbone {LCNET!r} shifts its stream once, before its "
                             f"third stage; leave {key} at {default!r} (got {value!r})")
    if shift_mode == 'online':
        raise ValueError(f"shift_mode: backbone {LCNET!r} shifts both ways "
                         f"('bidirectional', or 'none'); got 'online'")


class TSM(nn.Layer):
    """Temporal Shift Module network on clips [N, T, 3, H, W] -> [N, classes].

    Parameter names equal paddle.vision.models.resnet{depth}'s, so an
    ImageNet state dict loads as is; shift_mode='none' gives TSN.
    backbone='resnet_vd' is PP-TSM's ResNet-vd (models/resnet.py): its stem convs are
    conv1_1..conv1_3 with bn1_1..bn1_3, the blocks keep the names above.
    shift_every=k shifts blocks 0, k, 2k, ... of each stage only: the
    original ResNet-101 TSM checkpoints shift every other block (k=2).
    backbone='mobilenet_v2' is MobileNetV2 (models/mobilenet_v2.py): stem conv1/bn1, blocks
    layers.0..16, the last 1x1 conv conv_last/bn_last before the pool; depth keeps its
    default there. 'mobilenet_v2_pp' is PaddleClas's (PP-TSM's): layers.0 has conv1 too.
    backbone='pplcnet_v2' is PP-TSMv2 (models/pplcnet_v2.py): stem_blocks, stages.0..3,
    last_conv and fc; it shifts the stream once, before stages.2, as
    paddle.nn.functional.temporal_shift does, after a temporal attention (its
    global_attention.fc) when temporal_attention is true.
    """

    def __init__(self, num_classes=400, seg_num=8, depth=50,
                 shift_mode='bidirectional', shift_place='residual',
                 shift_ratio=0.125, shift_every=1, dropout=0.5, backbone='resnet',
                 temporal_attention=False):
        super().__init__()
        check_args(depth, shift_mode, shift_place, shift_ratio, shift_every,
                    seg_num, num_classes, dropout, backbone, temporal_attention)
        # The constructor's arguments, as a config's MODEL section and a checkpoint
        # record them (weights are checked against them when loaded).
        self.settings = dict(num_classes=num_classes, seg_num=seg_num, depth=depth,
                             shift_mode=shift_mode, shift_place=shift_place,
                             shift_ratio=shift_ratio, shift_every=shift_every,
                             dropout=dropout, backbone=backbone,
                             temporal_attention=temporal_attention)
        self.num_classes = num_classes
        self.seg_num = seg_num
        self.shift_mode = shift_mode
        self.shift_every = shift_every
        self.backbone = backbone

        def make_shift():
            if shift_mode == 'none':
                return None
            return TemporalShift(seg_num, shift_ratio, shift_mode)

        self.shift_ratio = 0 if shift_mode == 'none' else shift_ratio
        if backbone == LCNET:
            in_channels = self._make_lcnet(temporal_attention)
        else:
            in_channels = self._make_cnn(depth, make_shift, shift_place, shift_every)
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def _make_lcnet(self, temporal_attention):
        """PP-LCNetV2's layers; returns the channels the classifier reads."""
        self.stem_blocks = pplcnet_v2.make_stem()
        self.stages = pplcnet_v2.make_stages()
        self.global_attention = (pplcnet_v2.TemporalAttention(self.seg_num)
                                 if temporal_attention else None)
        self.act = nn.ReLU()
        self.last_conv = Conv2D(2 * pplcnet_v2.STAGES[-1][0], pplcnet_v2.LAST_CHANNELS, 1,
                                bias_attr=False)
        return pplcnet_v2.LAST_CHANNELS

    def _make_cnn(self, depth, make_shift, shift_place, shift_every):
        """The stem, blocks and (MobileNetV2) last conv of the other backbones; returns the
        channels the classifier reads."""
        backbone = self.backbone
        self.stem_layers = STEMS[backbone]
        for conv, bn, cin, cout, kernel, stride in self.stem_layers:
            layers = conv_bn(cin, cout, kernel, stride)
            setattr(self, conv, layers[0])
            setattr(self, bn, layers[1])
        if backbone in MOBILENETS:
            self.act = nn.ReLU6()
            self.maxpool = None
            self.layers = mobilenet_v2.make_blocks(make_shift, shift_place,
                                                   expand_all=backbone == 'mobilenet_v2_pp')
            self.conv_last, self.bn_last = conv_bn(mobilenet_v2.SETTINGS[-1][1],
                                                   mobilenet_v2.LAST_CHANNELS, 1)
            return mobilenet_v2.LAST_CHANNELS
        self.act = activation(backbone)
        self.maxpool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        return self._make_stages(depth, make_shift, shift_place, shift_every, backbone)

    def _make_stages(self, depth, make_shift, shift_place, shift_every, backbone):
        """layer1..layer4 of a ResNet; returns the channels of layer4's output."""
        block, counts = RESNET_SPECS[depth]
        in_channels = 64
        for k, (planes, count) in enumerate(zip((64, 128, 256, 512), counts)):
            stage = make_stage(block, in_channels, planes, count,
                               1 if k == 0 else 2, make_shift, shift_place,
                               shift_every, backbone)
            setattr(self, f'layer{k + 1}', stage)
            in_channels = planes * block.expansion
        return in_channels

    def blocks(self):
        """[ResidualBlock] from the first block to the last, in forward order ('layer1.0' ..
        of a ResNet, 'layers.0' .. 'layers.16' of MobileNetV2): the one enumeration of the
        blocks (weight conversion, the online step and the inference form walk this list).
        PP-LCNetV2 has no shifted residual blocks: its list is empty."""
        if self.backbone == LCNET:
            return []
        if self.backbone in MOBILENETS:
            return [ResidualBlock(f'layers.{i}', i, block) for i, block in enumerate(self.layers)]
        return [ResidualBlock(f'layer{k}.{i}', i, block) for k in range(1, 5)
                for i, block in enumerate(getattr(self, f'layer{k}'))]

    def frame_stem(self, frames):
        """[N*T, 3, H, W] frames -> the input of the first block."""
        if self.backbone == LCNET:
            return self.stem_blocks(frames)
        x = frames
        for conv, bn, *_ in self.stem_layers:
            x = self.act(getattr(self, bn)(getattr(self, conv)(x)))
        return x if self.backbone in MOBILENETS else self.maxpool(x)

    def head(self, features):
        """The output of the last block -> per-frame logits [N*T, num_classes]."""
        if self.backbone in MOBILENETS:  # MobileNetV2's last 1x1 conv widens the features first
            features = self.act(self.bn_last(self.conv_last(features)))
        elif self.backbone == LCNET:  # PP-LCNetV2 widens them after the pool
            return self.fc(self.dropout(paddle.flatten(
                self.act(self.last_conv(self.avgpool(features))), 1)))
        return self.fc(self.dropout(paddle.flatten(self.avgpool(features), 1)))

    def _check_input(self, x):
        if len(x.shape) != 5:
            raise ValueError(f"TSM input: expected rank 5 [N, T, 3, H, W], "
                             f"got shape {list(x.shape)}")
        if x.shape[1] != self.seg_num:
            raise ValueError(f"TSM input: expected T = seg_num = "
                             f"{self.seg_num} frames on axis 1, got shape "
                             f"{list(x.shape)}")
        if x.shape[2] != 3:
            raise ValueError(f"TSM input: expected 3 channels on axis 2, "
                             f"got shape {list(x.shape)}")

    def frame_scores(self, x):
        """Per-frame logits [N, T, num_classes] (no temporal averaging)."""
        self._check_input(x)
        # flatten keeps N symbolic, so an exported graph takes any batch size.
        x = self.frame_stem(paddle.flatten(x, 0, 1))
        if self.backbone == LCNET:
            for k, stage in enumerate(self.stages):
                if k == pplcnet_v2.SHIFTED_STAGE:
                    x = pplcnet_v2.shifted_stream(x, self.seg_num, self.shift_ratio,
                                                  self.global_attention)
                x = stage(x)
            x = self.head(x)
        elif self.backbone in MOBILENETS:
            x = self.head(self.layers(x))
        else:
            x = self.head(self.layer4(self.layer3(self.layer2(self.layer1(x)))))
        return paddle.reshape(x, [-1, self.seg_num, self.num_classes])

    def forward(self, x):
        return self.frame_scores(x).mean(axis=1)
