#!/usr/bin/env python3
"""Writes the seed corpus tests/fuzz/corpus_safetensors/ (small files, one per known malformed
case plus a few valid files). Re-run after changing a case; the files are committed."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_safetensors")


def st(header, data=b"", length=None):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def t(name, dtype, shape, begin, end):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (name, dtype, shape, begin, end)


CASES = {
    # valid files
    "valid_f32_pair": st("{" + t("a", "F32", "[2,2]", 0, 16) + "," + t("b", "I64", "[1]", 16, 24) + "}",
                         struct.pack("<4f", 1.5, -2, 3.25, 0.5) + struct.pack("<q", -7)),
    "valid_metadata_bool_f16": st('{"__metadata__":{"format":"pt","k\\u00e9":"v\\n"},' + t("m", "BOOL", "[3]", 0, 3)
                                  + "," + t("h", "F16", "[2]", 3, 7) + "," + t("bf", "BF16", "[]", 7, 9) + "}",
                                  b"\x01\x00\x07" + b"\x00\x3c\x00\xc0" + b"\x80\x3f"),
    "valid_empty_header": st("{}"),
    "valid_zero_size": st("{" + t("z", "F64", "[0,4]", 0, 0) + "," + t("s", "F32", "[]", 0, 4) + "}", b"\x00\x00\x80\x3f"),
    "valid_zero_mid_dim": st("{" + t("z", "F32", "[2,0,3]", 0, 0) + "}"),
    # header length problems
    "short_file": b"\x05\x00\x00",
    "header_len_past_end": st("{}", length=40),
    "header_len_over_100mb": st("{}", length=100 * 1024 * 1024 + 1),
    "header_len_huge": st("{}", length=1 << 60),
    # not UTF-8 / not JSON
    "non_utf8": st(b'{"\xff":1}'),
    "overlong_utf8": st(b'{"\xc0\xaf":1}'),
    "surrogate_utf8": st(b'{"\xed\xa0\x80":1}'),
    "not_json": st("not json"),
    "truncated_json": st('{"a":'),
    "trailing_comma": st('{"a":1,}'),
    "bad_escape": st('{"a":"\\x"}'),
    "lone_surrogate_escape": st('{"a":"\\ud800"}'),
    "deep_nesting": st("[" * 200 + "]" * 200),
    "array_root": st("[1,2]"),
    "duplicate_key": st("{" + t("a", "F32", "[]", 0, 4) + ',"a":{}}', b"abcd"),
    # offsets
    "offsets_out_of_bounds": st("{" + t("t", "F32", "[2]", 4, 12) + "}", b"\x01" * 8),
    "offsets_overlap": st("{" + t("a", "F32", "[2]", 0, 8) + "," + t("b", "F32", "[1]", 4, 8) + "}", b"\x01" * 8),
    "offsets_gap": st("{" + t("t", "F32", "[1]", 4, 8) + "}", b"\x01" * 8),
    "offsets_trailing": st("{" + t("t", "F32", "[1]", 0, 4) + "}", b"\x01" * 8),
    "offsets_reversed": st("{" + t("t", "F32", "[1]", 4, 0) + "}", b"\x01" * 4),
    "offsets_huge": st("{" + t("t", "F32", "[1]", 18446744073709551612, 18446744073709551615) + "}", b"\x01" * 4),
    # shapes and dtypes
    "shape_overflow": st("{" + t("t", "F32", "[4294967296,4294967296]", 0, 4) + "}", b"\x01" * 4),
    "shape_u64_overflow": st("{" + t("t", "F32", "[99999999999999999999]", 0, 4) + "}", b"\x01" * 4),
    "shape_zero_with_huge_dims": st("{" + t("t", "F32", "[0,1099511627776,1099511627776]", 0, 0) + "}"),
    "shape_negative": st("{" + t("t", "F32", "[-1]", 0, 4) + "}", b"\x01" * 4),
    "shape_fraction": st("{" + t("t", "F32", "[1.5e0]", 0, 4) + "}", b"\x01" * 4),
    "shape_size_mismatch": st("{" + t("t", "F32", "[2]", 0, 4) + "}", b"\x01" * 4),
    "unknown_dtype": st("{" + t("t", "Q8", "[1]", 0, 4) + "}", b"\x01" * 4),
    "missing_field": st('{"t":{"dtype":"F32","shape":[1]}}', b"\x01" * 4),
    "extra_field": st('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":null}}', b"\x01" * 4),
    "metadata_not_string": st('{"__metadata__":{"k":1}}'),
}

os.makedirs(OUT, exist_ok=True)
for name, data in CASES.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(CASES), OUT))
