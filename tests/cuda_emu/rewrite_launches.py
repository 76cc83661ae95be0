#!/usr/bin/env python3
"""Copies kernels/cuda's sources into the CUDA emulation build's tree, rewritten for a C++
compiler (tests/cuda_emu/cuda_emu.h supplies the rest):

  kernel<T, 4><<<grid, block, smem, stream>>>(a, b);
      -> ::bm_emu::launch(::bm_emu::cfg(grid, block, smem, stream), "kernel<T, 4>",
                          [=](auto&... bm_emu_a) { kernel<T, 4>(bm_emu_a...); }, a, b);
  extern __shared__ __align__(16) float smem[];
      -> float* smem = reinterpret_cast<float*>(::bm_emu::dynamic_smem());
  __shared__ float a[32], b[8];   (block scope: a static array in the emulator)
      -> __shared__ float a[32], b[8]; ::bm_emu::fresh_shared(&a, sizeof(a)); ::bm_emu::fresh_shared(&b, sizeof(b));
     (the first thread of each block to pass it fills it with garbage, as a GPU's is)

Usage: rewrite_launches.py SRC_DIR OUT_DIR. Files are written only when
their text changes, so the build does not recompile what did not change.
"""
import pathlib
import re
import sys

STATIC_SHARED = re.compile(r"(?<!extern )__shared__\s+(?:__align__\(\d+\)\s+)?[^;{}()]*?;")
EXTERN_SHARED = re.compile(r"extern\s+__shared__\s+((?:__align__\(\d+\)\s+)?)([\w:<>\s]+?)\s+(\w+)\s*\[\s*\]\s*;")


def kernel_expr_start(text, end):
    """Index where the kernel expression that ends just before `end` starts: an
    identifier path (a::b) with an optional template argument list."""
    i = end
    while i > 0 and text[i - 1].isspace():
        i -= 1
    if i > 0 and text[i - 1] == ">":  # template arguments: walk back to the matching '<'
        depth = 0
        while i > 0:
            i -= 1
            c = text[i]
            if c == ">":
                depth += 1
            elif c == "<":
                depth -= 1
                if depth == 0:
                    break
        while i > 0 and text[i - 1].isspace():
            i -= 1
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_:"):
        i -= 1
    return i


def matching_close(text, start, open_tok, close_tok):
    depth = 0
    i = start
    while i < len(text):
        if text.startswith(open_tok, i):
            depth += 1
            i += len(open_tok)
            continue
        if text.startswith(close_tok, i):
            depth -= 1
            if depth == 0:
                return i
            i += len(close_tok)
            continue
        i += 1
    raise ValueError("unbalanced " + open_tok)


def rewrite(text, path):
    out = []
    pos = 0
    while True:
        k = text.find("<<<", pos)
        if k < 0:
            break
        line_start = text.rfind("\n", 0, k) + 1
        if "//" in text[line_start:k]:  # a launch mentioned in a comment
            out.append(text[pos : k + 3])
            pos = k + 3
            continue
        start = kernel_expr_start(text, k)
        close = text.find(">>>", k)
        if close < 0:
            raise ValueError(f"{path}: '<<<' without '>>>'")
        cfg = text[k + 3 : close]
        j = close + 3
        while text[j].isspace():
            j += 1
        if text[j] != "(":
            raise ValueError(f"{path}: launch without an argument list")
        expr = " ".join(text[start:k].split())
        args_close = matching_close(text, j, "(", ")")
        args = text[j + 1 : args_close]
        sep = ", " if args.strip() else ""
        out.append(text[pos:start])
        # By copy: in async mode (BIGMODEL_EMU_ASYNC=1) the lambda outlives the launching
        # function, and `expr` may name a local (a kernel chosen into a function pointer).
        call = f"[=](auto&... bm_emu_a) {{ {expr}(bm_emu_a...); }}"
        out.append(f'::bm_emu::launch(::bm_emu::cfg({cfg}), "{expr}", {call}{sep}{args})')
        pos = args_close + 1
    out.append(text[pos:])
    text = "".join(out)

    def shared(m):
        typ = " ".join(m.group(2).split())
        return f"{typ}* {m.group(3)} = reinterpret_cast<{typ}*>(::bm_emu::dynamic_smem());"

    text = EXTERN_SHARED.sub(shared, text)

    def fresh(m):
        decl = m.group(0)
        line_start = text.rfind("\n", 0, m.start()) + 1
        if "//" in text[line_start : m.start()] or "#define" in text[line_start : m.start()]:
            return decl  # in a comment or a macro
        # The declarators after the type: split at top-level commas, each name leads its part.
        body = decl[len("__shared__") : -1]
        parts, depth, cur = [], 0, ""
        for c in body:
            depth += c in "[<(" and 1 or (-1 if c in "]>)" else 0)
            if c == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += c
        parts.append(cur)
        names = []
        for i, part in enumerate(parts):
            part = part.split("[")[0].strip()
            names.append(re.findall(r"\w+", part)[-1])
        return decl + "".join(f" ::bm_emu::fresh_shared(&{n}, sizeof({n}));" for n in names)

    return STATIC_SHARED.sub(fresh, text)


def main():
    src = pathlib.Path(sys.argv[1])
    dst = pathlib.Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.suffix not in (".cu", ".cuh", ".h", ".cpp"):
            continue
        text = rewrite(f.read_text(), f)
        name = f.name + ".cpp" if f.suffix == ".cu" else f.name
        target = dst / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


if __name__ == "__main__":
    main()
