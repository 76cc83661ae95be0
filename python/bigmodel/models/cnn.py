"""ArticleCNN: the two-convolution network of the classic PyTorch MNIST example, for 28x28
grey images (Fashion-MNIST), written the same way with bigmodel."""
import bigmodel as bm
from bigmodel import nn
from bigmodel.nn import functional as F


class ArticleCNN(nn.Module):
    """conv(1, 32, 3) -> relu -> conv(32, 64, 3) -> relu -> max_pool 2 -> dropout(0.25) ->
    flatten -> fc(64*12*12, 128) -> relu -> dropout(0.5) -> fc(128, 10). Returns logits.

    28x28 input: the 3x3 convolutions give 26x26 then 24x24, and the pool 12x12, hence
    fc1's 64 * 12 * 12 = 9216 inputs.
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(64 * 12 * 12, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = bm.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        return x


__all__ = ["ArticleCNN"]
