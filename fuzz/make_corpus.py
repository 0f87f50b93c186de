#!/usr/bin/env python3
"""Write the seed corpus of the native PNG fuzz target (``fuzz/fuzz_png.c``) into
``fuzz/corpus/`` (or the folder given): a few dozen small inputs in the target's layout (a
10-byte header of flags and sizes, then the payload; see the top of ``fuzz_png.c``).

Seeds: label-like images filtered with every filter type (PNG row filters written here from
the specification, stdlib only) for each un-filter kind, with and without instanceIds in the
fused pass; mask seeds with 8- and 16-bit ground truth; wrong lengths and huge sizes; and
whole PNG files (chunks after the signature) for the chunk walk, with and without their CRCs
recomputed by the target. Deterministic: rerunning writes the same bytes.

    python3 fuzz/make_corpus.py [FOLDER]
"""

from __future__ import annotations

import random
import struct
import sys
import zlib
from pathlib import Path


def paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_rows(rows: list[bytes], bpp: int, types: list[int]) -> bytes:
    """PNG-filter rows of bytes (ISO/IEC 15948, 9.2): each row is the filter type byte and the
    filtered bytes."""
    out = bytearray()
    above = bytes(len(rows[0])) if rows else b""
    for y, row in enumerate(rows):
        ft = types[y % len(types)]
        out.append(ft)
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = above[i]
            c = above[i - bpp] if i >= bpp else 0
            pred = (0, a, b, (a + b) // 2, paeth(a, b, c))[ft]
            out.append((x - pred) & 0xFF)
        above = row
    return bytes(out)


def label_rows(rng: random.Random, h: int, w: int, bpp: int, values: int) -> list[bytes]:
    """Blocky regions of a few values, as label maps are, with a few stray pixels."""
    cells = [[bytes(rng.randrange(values) for _ in range(bpp)) for _ in range(w // 5 + 1)]
             for _ in range(h // 3 + 1)]
    rows = []
    for y in range(h):
        row = bytearray()
        for x in range(w):
            px = cells[y // 3][x // 5]
            if rng.random() < 0.03:
                px = bytes(rng.randrange(256) for _ in range(bpp))
            row += px
        rows.append(bytes(row))
    return rows


def header(flags: int, h: int, w: int, delta: int = 0, index_len: int = 0,
           counts: int = 0, seed: int = 0, walk: int = 0) -> bytes:
    return struct.pack("<BHHbBBBB", flags, h, w, delta, index_len, counts, seed, walk)


def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(
        ">I", zlib.crc32(ctype + body))


def png_chunks(w: int, h: int, depth: int, colour: int, raw: bytes, idat_size: int = 0,
               extra: bool = False) -> bytes:
    """A PNG file without its signature: IHDR, [tEXt], IDAT chunk(s), IEND."""
    stream = zlib.compress(raw, 9)
    parts = [chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))]
    if extra:
        parts.append(chunk(b"tEXt", b"Software\x00segeval"))
    step = idat_size or len(stream) or 1
    parts += [chunk(b"IDAT", stream[i:i + step]) for i in range(0, max(len(stream), 1), step)]
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)


def seeds() -> dict[str, bytes]:
    rng = random.Random(20240518)
    out: dict[str, bytes] = {}
    for kind, bpp in enumerate((1, 2, 3, 4)):
        for types in ([0], [1], [2], [3], [4], [4, 2, 1, 3, 0]):
            h, w = rng.choice([(1, 1), (2, 7), (5, 13), (9, 31), (16, 64)])
            rows = label_rows(rng, h, w, bpp, 4)
            name = f"unfilter{bpp}_f{''.join(map(str, types))}_{h}x{w}"
            flags = kind | (32 if len(types) > 1 else 0) | (64 if bpp == 2 else 0)
            out[name] = header(flags, h, w, index_len=8, counts=0x80 | 6,
                               seed=rng.randrange(256)) + filter_rows(rows, bpp, types)
    # the fused pass with instanceIds, rows of Cityscapes-like ids (label * 1000 + k)
    for i, (h, w) in enumerate([(3, 10), (8, 40), (12, 97)]):
        ids = [b"".join(struct.pack(">H", 26000 + (x // 9) + 1000 * (y // 4)) for x in range(w))
               for y in range(h)]
        out[f"fused_inst_{h}x{w}"] = header(32 | 1, h, w, seed=i) + filter_rows(ids, 2, [4, 2])
    # the mask pass: a box of ones on zeros, 8- and 16-bit ground truth
    for wide in (0, 64):
        h, w = 10, 24
        rows = [bytes(1 if 2 <= y < 7 and 5 <= x < 17 else 0 for x in range(w))
                for y in range(h)]
        out[f"mask_box_{'u16' if wide else 'u8'}"] = header(
            wide, h, w, index_len=255, counts=0x80 | 9) + filter_rows(rows, 1, [0, 2, 4, 1])
    # wrong lengths, huge sizes, empty images, bad filter bytes kept
    out["wrong_raw_length"] = header(8 | 2, 4, 5, delta=-3) + bytes(range(64))
    out["wrong_out_length"] = header(16 | 3, 4, 5, delta=5) + bytes(range(64))
    out["huge_sizes"] = header(4, 0xFFFF, 0xFFFF, delta=40, seed=30) + bytes(16)
    out["huge_overflow"] = header(4 | 1, 0x8000, 0x8000, delta=33, seed=33) + bytes(16)
    out["zero_width"] = header(0, 5, 0) + bytes(5)
    out["zero_height"] = header(1, 0, 9)
    out["bad_filter_kept"] = header(128 | 32, 4, 6, seed=5) + bytes([0] * 7 + [9] + [0] * 60)
    # regressions (found by the fuzzer): the mask pass of an empty image (h = 0) of width 2^62
    # allocated two rows of that width
    out["regress_mask_h0_huge_w"] = header(4, 0, 9, seed=62)
    # the chunk walk: whole PNG files (after the signature)
    for i, (w, h, depth, colour, bpp) in enumerate([(7, 5, 8, 0, 1), (6, 4, 16, 0, 2),
                                                     (5, 3, 8, 2, 3), (4, 4, 8, 6, 4),
                                                     (9, 2, 8, 3, 1)]):
        raw = filter_rows(label_rows(rng, h, w, bpp, 3), bpp, [1, 4])
        out[f"walk_{depth}bit_c{colour}"] = header(0, h, w, walk=1) + png_chunks(
            w, h, depth, colour, raw, idat_size=0 if i % 2 else 7, extra=i % 2 == 1)
    # IDAT holding the raw rows themselves (so that the target un-filters what it gathers)
    rows = filter_rows(label_rows(rng, 3, 4, 1, 3), 1, [2])
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 8, 0, 0, 0, 0))
    body += chunk(b"IDAT", rows[:6]) + chunk(b"IDAT", rows[6:]) + chunk(b"IEND", b"")
    out["walk_raw_idat"] = header(0, 3, 4, walk=1) + body
    # damaged files: no IEND, a second IHDR, split IDATs, CRCs to be fixed by the target
    good = png_chunks(3, 3, 8, 0, bytes(12))
    out["walk_no_iend"] = header(0, 3, 3, walk=1) + good[:-12]
    ihdr2 = chunk(b"IHDR", struct.pack(">IIBBBBB", 9, 9, 8, 0, 0, 0, 0))
    out["walk_second_ihdr"] = header(0, 3, 3, walk=1) + good[:25] + ihdr2 + good[25:]
    split = png_chunks(6, 6, 8, 0, bytes(42), idat_size=5)
    second = split.index(b"IDAT", split.index(b"IDAT") + 1) - 4
    out["walk_split_idat"] = header(0, 6, 6, walk=3) + (
        split[:second] + chunk(b"tEXt", b"a\x00b") + split[second:])
    broken = bytearray(good)
    broken[20] ^= 0x10  # inside IHDR's data: the CRC is recomputed by the target (walk bit 1)
    out["walk_fix_crc"] = header(0, 3, 3, walk=3) + bytes(broken)
    out["walk_animated"] = header(0, 3, 3, walk=1) + good[:25] + chunk(
        b"acTL", struct.pack(">II", 1, 0)) + good[25:]
    # the streaming inflater (walk byte: 4 | stream mode << 3 | 32 for a flipped bit | 64 for
    # a distance before the start): zlib
    # streams of mask rows (fixed and dynamic codes, stored blocks, a small window), a raw
    # deflate body after the target's zlib header, and images the target deflates itself
    h, w = 10, 24
    rows = [bytes(255 if 2 <= y < 7 and 5 <= x < 17 else 0 for x in range(w)) for y in range(h)]
    raw = filter_rows(rows, 1, [0, 2, 1, 4, 3])
    for name, level, strategy, wbits in (("dynamic", 9, zlib.Z_DEFAULT_STRATEGY, 15),
                                         ("fixed", 6, zlib.Z_FIXED, 15),
                                         ("stored", 0, zlib.Z_DEFAULT_STRATEGY, 15),
                                         ("rle_small_window", 6, zlib.Z_RLE, 9)):
        c = zlib.compressobj(level, zlib.DEFLATED, wbits, 8, strategy)
        stream = c.compress(raw) + c.flush()
        out[f"inflate_{name}"] = header(64 if name == "fixed" else 0, h, w, index_len=255,
                                        counts=3, walk=4) + stream
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out["inflate_raw_deflate"] = header(0, h, w, index_len=9, counts=4, walk=4 | 8) + (
        c.compress(raw) + c.flush() + struct.pack(">I", zlib.adler32(raw)))
    payload = bytes(rng.randrange(256) for _ in range(300))
    out["inflate_image_here"] = header(0, 20, 150, index_len=40, counts=5, walk=4 | 16) + payload
    out["inflate_image_here_flipped"] = header(0, 20, 150, delta=77, index_len=40, counts=5,
                                               walk=4 | 16 | 32) + payload
    out["inflate_image_zlib"] = header(64, 20, 150, index_len=40, counts=5, seed=61,
                                       walk=4 | 24) + payload
    out["inflate_before_start"] = header(0, 20, 150, delta=40, index_len=40, counts=5,
                                         walk=4 | 16 | 64) + payload
    # with the huge flag: 320 rows of 1401 bytes, 448 KB (the window slides)
    out["inflate_image_huge"] = header(4, 20, 1400, index_len=40, counts=5, walk=4 | 16) + payload
    return out


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (folder / name).write_bytes(data)
    print(f"{len(seeds())} seeds in {folder}")


if __name__ == "__main__":
    main()
