"""bm.models: ready-made networks (the article's CNN, a small ResNet)."""
from .cnn import ArticleCNN
from .resnet import BasicBlock, ResNet, resnet_small

__all__ = ["ArticleCNN", "BasicBlock", "ResNet", "resnet_small"]
