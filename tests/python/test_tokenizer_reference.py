"""The Python BertTokenizer still produces tests/fixtures/tokenizer_reference.json, the ids the
C++ tokenizer is checked against (tests/cpp/test_tokenizer_cpp.cpp): a change to either
tokenizer that the other does not follow fails one of the two tests. Regenerate the fixture
with tests/fixtures/make_tokenizer_reference.py after an intended change."""
import json
import os

import pytest

from bigmodel.models import BertTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "tokenizer_reference.json")
MINILM_DIR = os.environ.get("BIGMODEL_MINILM_DIR", os.path.expanduser("~/.cache/bigmodel/minilm"))


@pytest.mark.skipif(not os.path.isfile(os.path.join(MINILM_DIR, "vocab.txt")),
                    reason=f"all-MiniLM-L6-v2 not fetched into {MINILM_DIR} (run scripts/fetch_minilm.sh)")
def test_python_tokenizer_reproduces_the_cpp_reference():
    with open(FIXTURE, encoding="utf-8") as f:
        records = json.load(f)["records"]
    tok = BertTokenizer.from_pretrained(MINILM_DIR)
    cased = BertTokenizer(os.path.join(MINILM_DIR, "vocab.txt"), do_lower_case=False)
    pairs = 0
    for r in records:
        if "pair" in r:
            out = tok(r["text"], r["pair"], truncation=r["truncation"], max_length=r["max_length"], padding=False,
                      return_tensors=None)
            assert out["input_ids"] == r["ids"], (r["text"], r["pair"])
            assert out["token_type_ids"] == r["token_type_ids"], (r["text"], r["pair"])
            pairs += 1
        else:
            assert tok.encode(r["text"]) == r["ids"], r["text"]
            assert cased.encode(r["text"]) == r["cased_ids"], r["text"]
    assert len(records) >= 300 and pairs >= 30
