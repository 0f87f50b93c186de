"""The vectorised compressed-RLE decoder against run lengths computed from the masks."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from segeval.core.rle import compressed_run_lengths, compressed_totals, encode_mask


def runs_of(mask: np.ndarray) -> list[int]:
    """Column-major run lengths, starting with a (possibly empty) run of zeros."""
    flat = mask.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat.size and flat[0] else runs


masks = st.integers(1, 40).flatmap(
    lambda h: st.integers(1, 40).flatmap(
        lambda w: arrays(np.bool_, (h, w), elements=st.booleans())))


@settings(max_examples=60, deadline=None)
@given(st.lists(masks, min_size=1, max_size=6))
def test_decoded_runs_equal_the_masks_runs(ms: list[np.ndarray]) -> None:
    strings = [encode_mask(m)["counts"] for m in ms]
    runs, offsets = compressed_run_lengths(strings)
    for i, m in enumerate(ms):
        assert runs[offsets[i]:offsets[i + 1]].tolist() == runs_of(m)
    totals, minima, bad = compressed_totals(strings)
    assert totals.tolist() == [m.size for m in ms]
    assert not bad.any() and (minima >= 0).all()


def test_long_runs_and_large_images() -> None:
    m = np.zeros((1024, 2048), bool)
    m[100:900, 300:1700] = True
    m[0, 0] = True
    s = encode_mask(m)["counts"]
    runs, offsets = compressed_run_lengths([s, s.encode()])
    assert runs[: offsets[1]].tolist() == runs_of(m)
    assert runs[offsets[1]:].tolist() == runs_of(m)
    assert encode_mask(m) == {"size": [1024, 2048],
                              "counts": mask_utils.encode(np.asfortranarray(m, np.uint8))[
                                  "counts"].decode()}


def test_malformed_strings_are_flagged_not_decoded() -> None:
    good = encode_mask(np.eye(5, dtype=bool))["counts"]
    strings = [good, "abc~", "1é", "o" * 11 + "0", "k", "", good]
    totals, _, bad = compressed_totals(strings)
    # '~' is outside '0'..'o'; 'é' is not ASCII; 11 continuation groups overflow 50 bits;
    # 'k' (0x3b) says "more follows" at the end of the string
    assert bad.tolist() == [False, True, True, True, True, False, False]
    assert totals[0] == totals[6] == 25 and totals[5] == 0


def test_garbage_that_decodes_has_the_wrong_total() -> None:
    good = encode_mask(np.eye(5, dtype=bool))["counts"]
    # one more value 5; a run of -3 ('M' = 0x1d: sign bit set) in third position
    totals, minima, bad = compressed_totals([good + "5", good[:2] + "M" + good[3:]])
    assert not bad.any()
    assert totals[0] == 35  # stored as a difference: 5 + the run two before (5)
    assert minima[1] < 0 or totals[1] != 25


def test_chunked_totals_equal_one_chunk(monkeypatch) -> None:
    from segeval.core import rle

    rng = np.random.default_rng(4)
    ms = [rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 30)))) < rng.random()
          for _ in range(200)]
    strings = [encode_mask(m)["counts"] for m in ms] + ["~", ""]
    whole = compressed_totals(strings)
    monkeypatch.setattr(rle, "CHUNK_CHARS", 7)
    chunked = compressed_totals(strings)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a, b)
    assert chunked[0][:200].tolist() == [m.size for m in ms] and chunked[2][200]
