#!/usr/bin/env python3
"""Sentence embeddings with the pretrained all-MiniLM-L6-v2 (a 6-layer BERT), on the CPU.

    scripts/fetch_minilm.sh                       # once: fetches the model (about 90 MB)
    python examples/bert_embed.py "A man is eating food." "Someone eats a meal." "The sky is blue."

Tokenises the sentences (bm.models.BertTokenizer), runs bm.models.BertModel, mean-pools the
token vectors over the attention mask, L2-normalises them and prints the cosine similarity
matrix. The model folder is $BIGMODEL_MINILM_DIR (default ~/.cache/bigmodel/minilm) or --model.
"""
import argparse
import os
import sys
import time

import bigmodel as bm
from bigmodel.models import BertModel, BertTokenizer, l2_normalize, mean_pool

DEFAULTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A cheetah is running behind its prey.",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sentences", nargs="*", help="sentences to embed (default: five examples)")
    parser.add_argument("--model", default=os.environ.get("BIGMODEL_MINILM_DIR",
                                                          os.path.expanduser("~/.cache/bigmodel/minilm")))
    args = parser.parse_args()
    sentences = args.sentences or DEFAULTS
    if not os.path.isfile(os.path.join(args.model, "model.safetensors")):
        sys.exit(f"no model in {args.model}: run scripts/fetch_minilm.sh first (or pass --model DIR)")

    start = time.perf_counter()
    tokenizer = BertTokenizer.from_pretrained(args.model)
    model = BertModel.from_pretrained(args.model)
    loaded = time.perf_counter()
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=256)
    with bm.no_grad():
        hidden, _ = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        emb = l2_normalize(mean_pool(hidden, batch["attention_mask"]))
        sim = (emb @ emb.t()).tolist()
    done = time.perf_counter()

    print(f"model loaded in {loaded - start:.2f} s; {len(sentences)} sentences embedded in {done - loaded:.2f} s "
          f"(dim {emb.shape[1]})")
    for i, s in enumerate(sentences):
        print(f"[{i}] {s}")
    print("cosine similarity:")
    print("     " + "".join(f"{j:>7}" for j in range(len(sentences))))
    for i, row in enumerate(sim):
        print(f"[{i:>2}] " + "".join(f"{v:7.3f}" for v in row))


if __name__ == "__main__":
    main()
