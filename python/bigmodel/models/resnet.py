"""A small ResNet for 28x28 (or 32x32) images: a 3x3 stem and three stages of BasicBlocks
(16, 32, 64 channels; the last two halve the resolution), global average pooling and a
linear classifier. Layer names follow torchvision's ResNet (conv1, bn1, layer1..., fc)."""
from bigmodel import nn
from bigmodel.nn import functional as F


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with a residual connection; a 1x1 conv + BatchNorm
    (downsample) matches the shortcut when the stride or the width changes."""
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class ResNet(nn.Module):
    """ResNet(blocks=(2, 2, 2), widths=(16, 32, 64), in_channels=1, num_classes=10)."""

    def __init__(self, blocks=(2, 2, 2), widths=(16, 32, 64), in_channels=1, num_classes=10):
        super().__init__()
        if len(blocks) != len(widths) or not blocks:
            raise ValueError(f"[ResNet] blocks {blocks} and widths {widths} must be non-empty and of equal length")
        self.conv1 = conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_planes = widths[0]
        for i, (n, width) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2
            layers = []
            for j in range(n):
                layers.append(BasicBlock(in_planes, width, stride if j == 0 else 1))
                in_planes = width
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.num_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        # He initialisation for the convolutions (as torchvision's ResNet), BatchNorm at 1 / 0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.fc(x)


def resnet_small(num_classes=10, in_channels=1, blocks=(1, 1, 1)):
    """The small ResNet train_cnn.py uses for --model resnet: one block per stage by default."""
    return ResNet(blocks=blocks, widths=(16, 32, 64), in_channels=in_channels, num_classes=num_classes)


__all__ = ["BasicBlock", "ResNet", "resnet_small"]
