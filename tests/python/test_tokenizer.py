"""BertTokenizer: basic tokenization (clean, lowercase, accents, punctuation, CJK), WordPiece
greedy longest match on a small hand-made vocabulary, batch encoding with padding and
truncation, and (when all-MiniLM-L6-v2 has been fetched) ids of the real vocabulary."""
import json
import os

import pytest

import bigmodel as bm
from bigmodel.models import BasicTokenizer, BertTokenizer, WordPieceTokenizer

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "un", "##aff", "##able", "aff", "play", "##ing", "##s", "runn", "##er", ",", "!", ".", "cafe",
         "hello", "world", "你", "a", "##b", "##c", "ab"]
MINILM_DIR = os.environ.get("BIGMODEL_MINILM_DIR", os.path.expanduser("~/.cache/bigmodel/minilm"))


@pytest.fixture
def tok():
    return BertTokenizer({t: i for i, t in enumerate(SPECIAL + WORDS)})


def test_basic_tokenizer_splits_and_normalises():
    b = BasicTokenizer()
    assert b.tokenize("  Hello,World!! ") == ["hello", ",", "world", "!", "!"]
    assert b.tokenize("Café NAÏVE résumé") == ["cafe", "naive", "resume"]
    # CJK ideographs become words of their own; kana and Hangul do not.
    assert b.tokenize("ab你好cd") == ["ab", "你", "好", "cd"]
    # (accent stripping drops the kana voicing mark too, as uncased BERT does)
    assert b.tokenize("ありがとう") == ["ありかとう"]
    assert BasicTokenizer(strip_accents=False).tokenize("ありがとう") == ["ありがとう"]
    # control characters vanish, tabs/newlines are spaces, ASCII symbols like $ ^ ` split.
    assert b.tokenize("a\x00b\tc\nd$e^f`g") == ["ab", "c", "d", "$", "e", "^", "f", "`", "g"]
    assert BasicTokenizer(do_lower_case=False).tokenize("Héllo World") == ["Héllo", "World"]
    assert b.tokenize("") == []


def test_wordpiece_greedy_longest_match():
    vocab = {t: i for i, t in enumerate(SPECIAL + WORDS)}
    wp = WordPieceTokenizer(vocab)
    assert wp.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert wp.tokenize("playings") == ["play", "##ing", "##s"]
    # longest first: "ab" beats "a" + "##b"; then "##c".
    assert wp.tokenize("abc") == ["ab", "##c"]
    # no complete split -> the whole word is unknown (not a partial split).
    assert wp.tokenize("playx") == ["[UNK]"]
    assert wp.tokenize("a" * 101) == ["[UNK]"]


def test_encode_batch_padding_truncation(tok):
    ids = tok.vocab
    assert tok.tokenize("The runner, playing!") == ["the", "runn", "##er", ",", "play", "##ing", "!"]
    assert tok.encode("hello world") == [ids["[CLS]"], ids["hello"], ids["world"], ids["[SEP]"]]
    assert tok.encode("hello [MASK] world") == [ids["[CLS]"], ids["hello"], ids["[MASK]"], ids["world"],
                                                ids["[SEP]"]]
    batch = tok(["hello world", "the cafe", "hello"])
    assert batch["input_ids"].dtype == bm.int64
    assert batch["input_ids"].tolist() == [[2, ids["hello"], ids["world"], 3], [2, ids["the"], ids["cafe"], 3],
                                           [2, ids["hello"], 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["token_type_ids"].tolist() == [[0] * 4] * 3
    short = tok(["hello world the cafe"], max_length=4)
    assert short["input_ids"].tolist() == [[2, ids["hello"], ids["world"], 3]]
    fixed = tok(["hello"], padding="max_length", max_length=6)
    assert fixed["input_ids"].tolist() == [[2, ids["hello"], 3, 0, 0, 0]]
    assert fixed["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0]]
    plain = tok("hello world the", padding=False, return_tensors=None)
    assert plain["input_ids"] == [2, ids["hello"], ids["world"], ids["the"], 3]
    assert tok.decode(tok.encode("the runner")) == "the runner"


def test_bad_inputs(tok, tmp_path):
    with pytest.raises(TypeError, match="BertTokenizer"):
        tok(3)
    with pytest.raises(ValueError, match="padding"):
        tok(["a"], padding="sideways")
    with pytest.raises(ValueError, match="max_length"):
        tok(["a"], padding="max_length")
    with pytest.raises(ValueError, match="different lengths"):
        tok(["a", "hello world"], padding=False)
    with pytest.raises(ValueError, match="special token"):
        BertTokenizer({"a": 0})
    with pytest.raises(FileNotFoundError, match="BertTokenizer"):
        BertTokenizer.from_pretrained(str(tmp_path))


def test_vocab_from_txt_and_json_agree(tmp_path):
    tokens = SPECIAL + WORDS
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {t: i for i, t in enumerate(tokens)}}}),
                                             encoding="utf-8")
    a = BertTokenizer(str(tmp_path / "vocab.txt"))
    b = BertTokenizer(str(tmp_path / "tokenizer.json"))
    assert a.vocab == b.vocab
    assert BertTokenizer.from_pretrained(str(tmp_path)).encode("unaffable!") == [2, 6, 7, 8, 16, 3]


@pytest.mark.skipif(not os.path.isfile(os.path.join(MINILM_DIR, "vocab.txt")),
                    reason=f"all-MiniLM-L6-v2 not fetched into {MINILM_DIR} (run scripts/fetch_minilm.sh)")
def test_minilm_vocabulary_ids():
    tok = BertTokenizer.from_pretrained(MINILM_DIR)
    assert len(tok) == 30522
    # bert-base-uncased ids: [CLS]=101 [SEP]=102 [PAD]=0 [UNK]=100, hello=7592 world=2088 ","=1010 "!"=999
    assert tok.encode("Hello, World!") == [101, 7592, 1010, 2088, 999, 102]
    assert tok.convert_ids_to_tokens(tok.encode("你好")) == ["[CLS]", "[UNK]", "[UNK]", "[SEP]"]
    assert tok.tokenize("Café naïve") == ["cafe", "naive"]
    # tokenizer.json carries the same vocabulary.
    assert BertTokenizer(os.path.join(MINILM_DIR, "tokenizer.json")).vocab == tok.vocab


# ------------------------------------------------------------------ sentence pairs
def test_pair_encoding_layout_and_types(tok):
    # [CLS]=2 [SEP]=3 hello=19 world=20 the=5 play=10 ##ing=11
    out = tok("hello world", "the playing", return_tensors=None)
    assert out["input_ids"] == [2, 19, 20, 3, 5, 10, 11, 3]
    assert out["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert out["attention_mask"] == [1] * 8
    assert tok.encode("hello", "world") == [2, 19, 3, 20, 3]
    assert tok.encode("hello", "world", add_special_tokens=False) == [19, 20]
    # Batched: a list for each segment, or a list of (a, b) pairs; padding gets type 0.
    batch = tok(["hello", "the world"], ["world world", "hello"])
    assert batch["input_ids"].tolist() == [[2, 19, 3, 20, 20, 3], [2, 5, 20, 3, 19, 3]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1]]
    same = tok([("hello", "world world"), ("the world", "hello")])
    assert same["input_ids"].tolist() == batch["input_ids"].tolist()
    padded = tok(["hello", "the world hello"], ["world", "the"])
    assert padded["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 1]]
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 0, 0], [1] * 7]


def test_pair_truncation_strategies(tok):
    five = "hello world hello world hello"  # 5 pieces
    six = "the the the the the the"  # 6 pieces
    # Only the longer one is cut when the shorter fits beside it.
    assert tok.encode(five, "the", max_length=7) == [2, 19, 20, 19, 3, 5, 3]
    # Both too long: the shorter keeps room // 2, the longer the rest (room = 8 - 3 = 5).
    ids = tok.encode(five, six, max_length=8)
    assert ids == [2, 19, 20, 3, 5, 5, 5, 3]
    ids = tok.encode(six, five, max_length=8)
    assert ids == [2, 5, 5, 5, 3, 19, 20, 3]
    # Equal lengths and an odd room: the first gets the floor, the second the ceiling.
    assert tok.encode("the the the the", "a a a a", max_length=8) == [2, 5, 5, 3, 22, 22, 22, 3]
    assert tok.encode(five, six, truncation="only_second", max_length=9) == [2, 19, 20, 19, 20, 19, 3, 5, 3]
    assert tok.encode(five, six, truncation="only_first", max_length=10) == [2, 19, 3] + [5] * 6 + [3]
    assert len(tok.encode(five, six, truncation=False, max_length=4)) == 14
    # Batched truncation: every row fits max_length.
    out = tok([five, "hello"], [six, "world"], max_length=8)
    assert out["input_ids"].shape == (2, 8)
    with pytest.raises(ValueError, match="only_first"):
        tok.encode(five, six, truncation="only_first", max_length=8)
    with pytest.raises(ValueError, match="special tokens"):
        tok.encode("hello", "world", max_length=2)
    with pytest.raises(ValueError, match="truncation"):
        tok("hello", "world", truncation="middle")
    with pytest.raises(ValueError, match="text_pair"):
        tok(["hello", "world"], ["the"])
    with pytest.raises(TypeError, match="text_pair"):
        tok("hello", ["the"])


@pytest.mark.skipif(not os.path.isfile(os.path.join(MINILM_DIR, "tokenizer.json")),
                    reason=f"all-MiniLM-L6-v2 not fetched into {MINILM_DIR} (run scripts/fetch_minilm.sh)")
def test_minilm_pairs_follow_the_tokenizer_json_template():
    tok = BertTokenizer.from_pretrained(MINILM_DIR)
    with open(os.path.join(MINILM_DIR, "tokenizer.json"), encoding="utf-8") as f:
        spec = json.load(f)
    template = spec["post_processor"]["pair"]
    a, b = "How are you today?", "Fine, thanks!"
    seg = {"A": tok.encode(a, add_special_tokens=False), "B": tok.encode(b, add_special_tokens=False)}
    ids, types = [], []
    for piece in template:  # [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1 for BERT
        if "SpecialToken" in piece:
            name = piece["SpecialToken"]["id"]
            ids += spec["post_processor"]["special_tokens"][name]["ids"]
            types.append(piece["SpecialToken"]["type_id"])
        else:
            part = seg[piece["Sequence"]["id"]]
            ids += part
            types += [piece["Sequence"]["type_id"]] * len(part)
    out = tok(a, b, return_tensors=None)
    assert out["input_ids"] == ids and out["token_type_ids"] == types
    # bert-base-uncased ids: how=2129 are=2024 you=2017 today=2651 ?=1029 fine=2986 ,=1010 thanks=4283 !=999
    assert ids == [101, 2129, 2024, 2017, 2651, 1029, 102, 2986, 1010, 4283, 999, 102]
    # The model's own truncation setting (LongestFirst at 128) on a long pair.
    limit = spec["truncation"]["max_length"]
    long_pair = tok("word " * 200, "other " * 90, max_length=limit, return_tensors=None)
    assert len(long_pair["input_ids"]) == limit
    # Both exceed half the room: the shorter (second) keeps room // 2 pieces, plus its [SEP].
    assert long_pair["token_type_ids"].count(1) == (limit - 3) // 2 + 1
