#!/usr/bin/env python3
"""Writes tests/data/dequant_ref.bin: GGUF quantized blocks and the values the `gguf` package dequantizes them to.

tests/test_dequant.c holds every ISA level's kvz_dequantize to these values. Regenerate with
(from the source tree, in a venv with the pinned reference):

    python3 -m venv /tmp/kvzvenv && /tmp/kvzvenv/bin/pip install numpy gguf==0.19.0
    /tmp/kvzvenv/bin/python tests/dequant_ref.py tests/data/dequant_ref.bin

The blocks are made deterministically (fixed seed) from raw bytes, not by quantizing data, so
that they reach every bit pattern a file can hold: zero, negative, subnormal and largest-magnitude
f16 scales, all-zero and all-one quant fields (every nibble 15, every 2-, 3-, 5- and 6-bit field
at its maximum), the sign extremes of int8 fields, and random blocks. f16 scales that are NaN or
infinite are left out: ggml defines no output for them.

File format, all little-endian:
    magic   8 bytes  b"KVZDQREF"
    u32     version (1)
    u32     number of types
    per type:
        u32 ggml type id, u32 n_blocks, u32 values per block, u32 bytes per block
        n_blocks * bytes raw block bytes
        n_blocks * values float32 reference values
"""
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

SEED = 20261206

# Per type: offsets of its f16 scale fields, and its other fields as (start, end, kind) byte
# ranges; "q" ranges hold quants, "s" ranges hold packed sub-block scales (and mins).
LAYOUT = {
    T.Q4_0: ([0], [(2, 18, "q")]),
    T.Q4_1: ([0, 2], [(4, 20, "q")]),
    T.Q5_0: ([0], [(2, 22, "q")]),
    T.Q5_1: ([0, 2], [(4, 24, "q")]),
    T.Q8_0: ([0], [(2, 34, "q")]),
    T.Q2_K: ([80, 82], [(0, 16, "s"), (16, 80, "q")]),
    T.Q3_K: ([108], [(0, 96, "q"), (96, 108, "s")]),
    T.Q4_K: ([0, 2], [(4, 16, "s"), (16, 144, "q")]),
    T.Q5_K: ([0, 2], [(4, 16, "s"), (16, 176, "q")]),
    T.Q6_K: ([208], [(0, 192, "q"), (192, 208, "s")]),
}

# f16 bit patterns: +-0, smallest and largest subnormal, smallest normal, +-1, +-largest finite,
# and two ordinary scales of real weights.
SPECIAL_F16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x2118, 0xA4CD]

# whole-field byte patterns: all zero, all one bits, int8 extremes, alternating bits, nibbles 0/15
PATTERNS = [0x00, 0xFF, 0x80, 0x7F, 0x55, 0xAA, 0x0F, 0xF0]

# blocks per type: enough to cross every special scale with every pattern for the 32-value types,
# fewer for the 256-value types (their values dominate the file size)
N_LEGACY, N_K = 256, 48


def random_f16(rng, n):
    """n random finite f16 bit patterns (exponent 31, NaN and infinity, replaced)."""
    h = rng.integers(0, 1 << 16, size=n, dtype=np.uint32)
    bad = (h & 0x7C00) == 0x7C00
    h[bad] &= ~np.uint32(0x4000)
    return h.astype(np.uint16)


def make_blocks(rng, qtype, n):
    f16_offs, fields = LAYOUT[qtype]
    size = GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    for i in range(n):
        # scales: specials in turn for the first two thirds of the blocks (each f16 field shifted
        # so that d and m/dmin meet in different pairs), random finite for the rest
        for k, off in enumerate(f16_offs):
            if i < 2 * n // 3:
                h = SPECIAL_F16[(i + 5 * k) % len(SPECIAL_F16)]
            else:
                h = int(random_f16(rng, 1)[0])
            raw[i, off : off + 2] = np.frombuffer(struct.pack("<H", h), dtype=np.uint8)
        # other fields: a fixed pattern for half of the blocks (q and s fields cycling
        # independently), random bytes for the rest
        for j, (a, b, kind) in enumerate(fields):
            cycle = i // len(SPECIAL_F16) if kind == "q" else i // (len(SPECIAL_F16) * 2) + j
            if (i // 7) % 2 == 0:
                raw[i, a:b] = PATTERNS[cycle % len(PATTERNS)]
    return raw


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/dequant_ref.bin"
    rng = np.random.default_rng(SEED)
    chunks = [b"KVZDQREF", struct.pack("<II", 1, len(LAYOUT))]
    for qtype in LAYOUT:
        block, size = GGML_QUANT_SIZES[qtype]
        n = N_K if block == 256 else N_LEGACY
        raw = make_blocks(rng, qtype, n)
        ref = np.asarray(dequantize(raw.reshape(-1), qtype), dtype=np.float32).reshape(-1)
        assert ref.size == n * block and np.all(np.isfinite(ref)), qtype.name
        chunks.append(struct.pack("<IIII", int(qtype), n, block, size))
        chunks.append(raw.tobytes())
        chunks.append(ref.astype("<f4").tobytes())
    with open(out, "wb") as f:
        f.write(b"".join(chunks))


if __name__ == "__main__":
    main()
