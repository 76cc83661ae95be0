"""BERT's uncased WordPiece tokenizer, written from the published algorithm: a basic
tokenizer (clean, CJK split, lowercase, strip accents, split punctuation) followed by
greedy longest-match WordPiece with "##" continuations; batch encoding of single texts or
sentence pairs ([CLS] a [SEP] b [SEP], token types 0/1) with [CLS]/[SEP], truncation
(longest_first / only_first / only_second) and padding into input_ids / attention_mask /
token_type_ids tensors.
"""
import json
import os
import unicodedata

from .. import _C
from .._tensor import tensor as _as_tensor


# ------------------------------------------------------------------ character classes
def _is_whitespace(ch):
    return ch in (" ", "\t", "\n", "\r") or unicodedata.category(ch) == "Zs"


def _is_control(ch):
    # \t \n \r count as whitespace, not control, as in BERT.
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch):
    # BERT treats every non-alphanumeric ASCII symbol ("$", "^", "`", ...) as punctuation,
    # even those Unicode files under symbols, plus every Unicode P* character.
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_cjk(cp):
    # CJK Unified Ideographs blocks only: Hangul and kana are written with spaces/are
    # handled by WordPiece like any other script, as in BERT.
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


class BasicTokenizer:
    """Splits text into words and punctuation (before WordPiece)."""

    def __init__(self, do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None, never_split=()):
        self.do_lower_case = do_lower_case
        self.tokenize_chinese_chars = tokenize_chinese_chars
        # None follows do_lower_case (BERT's uncased models strip accents).
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents
        self.never_split = set(never_split)

    def _clean(self, text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            out.append(" " if _is_whitespace(ch) else ch)
        return "".join(out)

    def _space_cjk(self, text):
        return "".join(f" {ch} " if _is_cjk(ord(ch)) else ch for ch in text)

    @staticmethod
    def _strip_accents(word):
        return "".join(ch for ch in unicodedata.normalize("NFD", word) if unicodedata.category(ch) != "Mn")

    @staticmethod
    def _split_punctuation(word):
        pieces, current = [], []
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    pieces.append("".join(current))
                    current = []
                pieces.append(ch)
            else:
                current.append(ch)
        if current:
            pieces.append("".join(current))
        return pieces

    def tokenize(self, text):
        text = unicodedata.normalize("NFC", self._clean(text))
        if self.tokenize_chinese_chars:
            text = self._space_cjk(text)
        words = []
        for word in text.split():
            if word in self.never_split:
                words.append(word)
                continue
            if self.do_lower_case:
                word = word.lower()
            if self.strip_accents:
                word = self._strip_accents(word)
            words.extend(self._split_punctuation(word))
        return words


class WordPieceTokenizer:
    """Greedy longest-match-first split of one word into vocabulary pieces ("##" marks a
    piece that continues a word). A word with no full split becomes the unknown token."""

    def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, word):
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            piece = None
            while start < end:
                candidate = word[start:end] if start == 0 else "##" + word[start:end]
                if candidate in self.vocab:
                    piece = candidate
                    break
                end -= 1
            if piece is None:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


def load_vocab(path):
    """token -> id from a vocab.txt (one token a line, id = line number) or from a
    tokenizer.json (model.vocab)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"[BertTokenizer] vocabulary file not found: {path}")
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            try:
                vocab = json.load(f)["model"]["vocab"]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"[BertTokenizer] {path} is not a WordPiece tokenizer.json: {e}") from None
        return {str(k): int(v) for k, v in vocab.items()}
    vocab = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            token = line.rstrip("\n").rstrip("\r")
            vocab.setdefault(token, i)
    return vocab


class BertTokenizer:
    """BertTokenizer(vocab) with vocab a dict token -> id or a path (vocab.txt or
    tokenizer.json). from_pretrained(dir) reads dir/vocab.txt (else dir/tokenizer.json).

    tok(texts, padding=True, truncation=True, max_length=None) -> {"input_ids",
    "attention_mask", "token_type_ids"} int64 tensors of shape [batch, length].
    """

    def __init__(self, vocab, do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None,
                 unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                 model_max_length=512):
        self.vocab = load_vocab(vocab) if isinstance(vocab, (str, os.PathLike)) else dict(vocab)
        self.special_tokens = [unk_token, sep_token, pad_token, cls_token, mask_token]
        missing = [t for t in self.special_tokens if t not in self.vocab]
        if missing:
            raise ValueError(f"[BertTokenizer] the vocabulary lacks the special token(s) {missing}")
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.model_max_length = model_max_length
        self.basic = BasicTokenizer(do_lower_case, tokenize_chinese_chars, strip_accents,
                                    never_split=self.special_tokens)
        self.wordpiece = WordPieceTokenizer(self.vocab, unk_token)

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        for name in ("vocab.txt", "tokenizer.json"):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                break
        else:
            raise FileNotFoundError(f"[BertTokenizer] no vocab.txt or tokenizer.json in {directory}")
        config = os.path.join(directory, "tokenizer_config.json")
        if os.path.isfile(config):
            with open(config, encoding="utf-8") as f:
                cfg = json.load(f)
            for key in ("do_lower_case", "tokenize_chinese_chars", "strip_accents", "model_max_length"):
                if key in cfg and key not in kwargs:
                    kwargs[key] = cfg[key]
        return cls(path, **kwargs)

    def __len__(self):
        return len(self.vocab)

    @property
    def pad_token_id(self):
        return self.vocab[self.pad_token]

    @property
    def cls_token_id(self):
        return self.vocab[self.cls_token]

    @property
    def sep_token_id(self):
        return self.vocab[self.sep_token]

    def tokenize(self, text):
        """Word pieces of `text`, without special tokens."""
        return [piece for word in self.basic.tokenize(text) for piece in self.wordpiece.tokenize(word)]

    def convert_tokens_to_ids(self, tokens):
        unk = self.vocab[self.unk_token]
        return [self.vocab.get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        return [self.ids_to_tokens.get(int(i), self.unk_token) for i in ids]

    def decode(self, ids, skip_special_tokens=True):
        tokens = self.convert_ids_to_tokens(ids)
        if skip_special_tokens:
            tokens = [t for t in tokens if t not in self.special_tokens]
        return " ".join(tokens).replace(" ##", "")

    _TRUNCATION = (True, False, "longest_first", "only_first", "only_second", "do_not_truncate")

    def _check_truncation(self, truncation):
        if truncation not in self._TRUNCATION:
            raise ValueError(f"[BertTokenizer] truncation must be True, False, 'longest_first', 'only_first' or "
                             f"'only_second', got {truncation!r}")
        return truncation not in (False, "do_not_truncate")

    @staticmethod
    def _longest_first(la, lb, room):
        """Lengths kept of a pair under 'longest_first' (the rule of the Rust `tokenizers`
        library that BERT's tokenizer.json uses): the shorter sequence keeps all its pieces
        when the longer can absorb the cut; otherwise the shorter keeps room // 2 pieces and
        the longer the rest (ceil)."""
        swap = la > lb
        short, long_ = (lb, la) if swap else (la, lb)
        long_keep = short if short > room else max(short, room - short)
        short_keep = short
        if short_keep + long_keep > room:
            short_keep = room // 2
            long_keep = short_keep + room % 2
        return (long_keep, short_keep) if swap else (short_keep, long_keep)

    def _encode_with_types(self, text, text_pair=None, add_special_tokens=True, truncation=True, max_length=None):
        """(ids, token_type_ids) of [CLS] a [SEP] (b [SEP]); types 0 for the first segment
        (with its [CLS] and [SEP]) and 1 for the second."""
        a = self.convert_tokens_to_ids(self.tokenize(text))
        b = None if text_pair is None else self.convert_tokens_to_ids(self.tokenize(text_pair))
        max_length = self.model_max_length if max_length is None else max_length
        specials = (2 if b is None else 3) if add_special_tokens else 0
        room = max_length - specials
        if self._check_truncation(truncation):
            if room < 0:
                raise ValueError(f"[BertTokenizer] max_length={max_length} leaves no room for the {specials} "
                                 "special tokens")
            if b is None or truncation == "only_first":
                keep = room - (0 if b is None else len(b))
                if keep < 0:
                    raise ValueError(f"[BertTokenizer] truncation='only_first' cannot fit: the second sequence "
                                     f"alone has {len(b)} pieces, max_length={max_length}")
                a = a[:keep]
            elif truncation == "only_second":
                keep = room - len(a)
                if keep < 0:
                    raise ValueError(f"[BertTokenizer] truncation='only_second' cannot fit: the first sequence "
                                     f"alone has {len(a)} pieces, max_length={max_length}")
                b = b[:keep]
            elif len(a) + len(b) > room:
                ka, kb = self._longest_first(len(a), len(b), room)
                a, b = a[:ka], b[:kb]
        if not add_special_tokens:
            ids = a + (b or [])
            return ids, [0] * len(a) + [1] * (len(ids) - len(a))
        ids = [self.cls_token_id] + a + [self.sep_token_id]
        types = [0] * len(ids)
        if b is not None:
            ids += b + [self.sep_token_id]
            types += [1] * (len(b) + 1)
        return ids, types

    def encode(self, text, text_pair=None, add_special_tokens=True, truncation=True, max_length=None):
        """ids of [CLS] text [SEP] (text_pair [SEP]); truncation (True = 'longest_first',
        'only_first', 'only_second' or False) fits them into max_length."""
        return self._encode_with_types(text, text_pair, add_special_tokens, truncation, max_length)[0]

    def __call__(self, texts, text_pair=None, padding=True, truncation=True, max_length=None, return_tensors="bm"):
        """Encodes one text or a list of texts, optionally with a second segment each:
        text_pair is a str (with a str) or a list as long as texts; a list of (a, b) tuples
        also works. padding: True/"longest" pads to the longest, "max_length" to max_length,
        False leaves lists ragged (return_tensors must then be None). return_tensors="bm"
        gives int64 tensors, None plain lists. token_type_ids are 0 for the first segment
        and padding, 1 for the second."""
        single = isinstance(texts, str)
        if single:
            texts = [texts]
            if text_pair is not None:
                if not isinstance(text_pair, str):
                    raise TypeError("[BertTokenizer] with a single text, text_pair must be a str")
                text_pair = [text_pair]
        if not isinstance(texts, (list, tuple)):
            raise TypeError("[BertTokenizer] expected a str or a list of str")
        if text_pair is None and texts and all(isinstance(t, (tuple, list)) and len(t) == 2 for t in texts):
            texts, text_pair = [t[0] for t in texts], [t[1] for t in texts]
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("[BertTokenizer] expected a str, a list of str or a list of (str, str) pairs")
        if text_pair is not None:
            if not isinstance(text_pair, (list, tuple)) or not all(isinstance(t, str) for t in text_pair):
                raise TypeError("[BertTokenizer] text_pair must be a str or a list of str")
            if len(text_pair) != len(texts):
                raise ValueError(f"[BertTokenizer] got {len(texts)} texts but {len(text_pair)} text_pair entries")
        if padding not in (True, False, "longest", "max_length", "do_not_pad"):
            raise ValueError(f"[BertTokenizer] padding must be True, False, 'longest' or 'max_length', got {padding!r}")
        if return_tensors not in ("bm", None):
            raise ValueError(f"[BertTokenizer] return_tensors must be 'bm' or None, got {return_tensors!r}")
        self._check_truncation(truncation)
        pairs = [self._encode_with_types(t, None if text_pair is None else text_pair[i], truncation=truncation,
                                         max_length=max_length) for i, t in enumerate(texts)]
        encoded = [p[0] for p in pairs]
        types = [p[1] for p in pairs]
        if padding == "max_length":
            if max_length is None:
                raise ValueError("[BertTokenizer] padding='max_length' needs max_length")
            target = max_length
        elif padding in (True, "longest"):
            target = max((len(e) for e in encoded), default=0)
        else:
            target = None
        if target is not None:
            pad = self.pad_token_id
            masks = [[1] * len(e) + [0] * (target - len(e)) for e in encoded]
            types = [t + [0] * (target - len(t)) for t in types]
            encoded = [e + [pad] * (target - len(e)) for e in encoded]
        else:
            masks = [[1] * len(e) for e in encoded]
        if return_tensors is None:
            out = {"input_ids": encoded, "attention_mask": masks, "token_type_ids": types}
            return {k: v[0] for k, v in out.items()} if single else out
        if target is None and len({len(e) for e in encoded}) > 1:
            raise ValueError("[BertTokenizer] unpadded texts of different lengths cannot form a tensor; "
                             "use padding=True or return_tensors=None")
        i64 = _C.dtype.int64
        return {"input_ids": _as_tensor(encoded, dtype=i64), "attention_mask": _as_tensor(masks, dtype=i64),
                "token_type_ids": _as_tensor(types, dtype=i64)}


__all__ = ["BasicTokenizer", "WordPieceTokenizer", "BertTokenizer", "load_vocab"]
