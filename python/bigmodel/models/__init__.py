"""bm.models: ready-made networks (the article's CNN, a small ResNet)."""
from .cnn import ArticleCNN
from .resnet import BasicBlock, ResNet, resnet_small

__all__ = ["ArticleCNN", "BasicBlock", "ResNet", "resnet_small"]
from .bert import BertConfig, BertModel, BertClassifier, mean_pool, l2_normalize  # noqa: E402
from .tokenizer import BertTokenizer, BasicTokenizer, WordPieceTokenizer  # noqa: E402

__all__ += ["BertConfig", "BertModel", "BertClassifier", "mean_pool", "l2_normalize", "BertTokenizer",
            "BasicTokenizer", "WordPieceTokenizer"]
from .gpt import GPT, GPTConfig, gpt2_124m  # noqa: E402
__all__ += ["GPT", "GPTConfig", "gpt2_124m"]
