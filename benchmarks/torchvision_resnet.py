"""torchvision's ResNet architecture in plain torch, for a benchmark child whose interpreter has
torch but no working torchvision (a torchvision wheel built for another torch fails on import):
`install()` puts a `torchvision` module with `models.ResNet`, `models.resnet18/34/50/101` and
an empty `transforms` into sys.modules, enough for the original TSM code's ops/models.py to
build its TSN and shift it (ops/temporal_shift.py tests isinstance(net, models.ResNet) and
wraps each block's conv1). The layers, their names and their order are torchvision's (v1.5:
the stride on the 3x3 convolution), so the network and its ONNX graph are the ones the
original code builds; weights are random, as the benchmark needs.
"""
import sys
import types

from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, counts, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._stage(block, 64, counts[0], 1)
        self.layer2 = self._stage(block, 128, counts[1], 2)
        self.layer3 = self._stage(block, 256, counts[2], 2)
        self.layer4 = self._stage(block, 512, counts[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _stage(self, block, planes, count, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        blocks = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes) for _ in range(1, count)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _builder(block, counts):
    def build(pretrained=False, **kwargs):
        if pretrained:
            raise ValueError('no pretrained weights here: the benchmark uses random ones')
        return ResNet(block, counts, **kwargs)
    return build


BUILDERS = {18: _builder(BasicBlock, [2, 2, 2, 2]), 34: _builder(BasicBlock, [3, 4, 6, 3]),
            50: _builder(Bottleneck, [3, 4, 6, 3]), 101: _builder(Bottleneck, [3, 4, 23, 3])}


def install():
    """Make `import torchvision` give this module's ResNets (and an empty transforms)."""
    package = types.ModuleType('torchvision')
    models = types.ModuleType('torchvision.models')
    models.ResNet = ResNet
    for depth, build in BUILDERS.items():
        setattr(models, f'resnet{depth}', build)
    package.models = models
    package.transforms = types.ModuleType('torchvision.transforms')
    sys.modules.update({'torchvision': package, 'torchvision.models': models,
                        'torchvision.transforms': package.transforms})
