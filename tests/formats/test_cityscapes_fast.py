"""The one-pass Cityscapes path (decode and count three PNGs together, no images kept) against
the decode-then-count path and against cityscapesScripts: identical statistics on files with
every PNG row filter forced, palette predictions, train ids, odd sizes, and the same errors
(through the plain path) for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segeval import evaluate
from segeval.errors import FileFormatError, LabelError, SizeMismatchError
from segeval.formats.base import File, Folder
from segeval.formats.cityscapes import fused as fast
from segeval.formats.cityscapes.semantic import CityscapesPair, _Task, decode_and_count
from segeval.formats.cityscapes.semantic import score_pair as _score_pair
from segeval.formats.cityscapes.stats import official_result
from tests.cityscapes_data import assert_official_equal, official, scene, write_dataset
from tests.formats import pngenc

GREY, PALETTE = pngenc.GREY, pngenc.PALETTE


def write_pair(root: Path, labels: np.ndarray, inst: np.ndarray, pred: np.ndarray, *,
               filters=(0,), pred_colour: int = GREY, name: str = "x_000000_000000"):
    """Write one pair with our own encoder (every filter type can be forced per row)."""
    root.mkdir(parents=True, exist_ok=True)
    g = root / f"{name}_gtFine_labelIds.png"
    i = root / f"{name}_gtFine_instanceIds.png"
    p = root / f"{name}_pred.png"
    g.write_bytes(pngenc.encode(labels, GREY, filters=filters))
    i.write_bytes(pngenc.encode(inst, GREY, bit_depth=16, filters=filters[::-1]))
    p.write_bytes(pngenc.encode(pred, pred_colour, filters=filters[1:] + filters[:1]))
    return CityscapesPair(name, file(g), file(i), file(p))


def file(path: Path) -> File:
    return File(Folder(path.parent), path.name)


def task(pred_ids: str = "label", iiou: bool = True, kernel: str = "auto") -> _Task:
    """The fast decoder: small test images take the compiled path too."""
    return _Task(pred_ids, iiou, False, decoder="fast", kernel=kernel)


def both(pair: CityscapesPair, iiou: bool, pred_ids: str = "label"):
    """(one-pass statistics, decode-then-count statistics) of one pair."""
    got = fast.pair_stats(pair.gt, pair.pred, pair.instances if iiou else None, pred_ids,
                          "fast")
    assert got is not None, "the one-pass path should apply to these files"
    want = decode_and_count(task(pred_ids, iiou, "reference"), pair)
    return got, want


def assert_same(got, want) -> None:
    np.testing.assert_array_equal(got.matrix, want.matrix)
    np.testing.assert_array_equal(got.instances, want.instances)


@pytest.mark.parametrize("filters", [0, 1, 2, 3, 4, (4, 2, 1, 3, 0), (2, 4, 4, 1)])
@pytest.mark.parametrize("iiou", [True, False])
def test_every_filter_type_counts_like_decode_then_count(tmp_path: Path, filters, iiou) -> None:
    rng = np.random.default_rng(11)
    filters = (filters,) if isinstance(filters, int) else filters
    for h, w in ((1, 1), (1, 7), (5, 1), (23, 37), (40, 80), (9, 130)):
        labels, inst, pred = scene(rng, max(h, 12), max(w, 12))
        labels, inst, pred = labels[:h, :w], inst[:h, :w], pred[:h, :w]
        pair = write_pair(tmp_path / f"{h}x{w}", labels, inst, pred, filters=filters)
        assert_same(*both(pair, iiou))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 30), w=st.integers(1, 70),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=6), iiou=st.booleans(),
       palette=st.booleans(), noise=st.sampled_from([0.0, 0.05, 0.5]))
def test_random_pairs_count_like_decode_then_count(tmp_path: Path, seed, h, w, filters, iiou,
                                                   palette, noise) -> None:
    rng = np.random.default_rng(seed)
    labels, inst, pred = scene(rng, max(h, 12), max(w, 12), noise=noise)
    labels, inst, pred = labels[:h, :w], inst[:h, :w], pred[:h, :w]
    pair = write_pair(tmp_path / "p", labels, inst, pred, filters=tuple(filters),
                      pred_colour=PALETTE if palette else GREY)
    assert_same(*both(pair, iiou))


def test_train_ids_and_scratch_reuse_across_sizes(tmp_path: Path) -> None:
    """Train-id predictions; images of other widths and with/without instances in turn, in the
    same thread: the reused tables never leak counts from one image into the next."""
    rng = np.random.default_rng(2)
    for k, (h, w, iiou) in enumerate([(40, 80, True), (40, 80, False), (31, 61, True),
                                      (40, 80, True), (12, 200, False), (40, 80, True)]):
        labels, inst, _pred = scene(rng, h, w)
        train = rng.choice(np.array([*range(19), 255], np.uint8), size=(h, w))
        pair = write_pair(tmp_path / str(k), labels, inst, train, filters=(4, 2, 1))
        assert_same(*both(pair, iiou, "train"))
        labels2, inst2, pred2 = scene(rng, h, w)
        pair = write_pair(tmp_path / f"{k}b", labels2, inst2, pred2, filters=(k % 5,))
        assert_same(*both(pair, iiou))


@pytest.mark.parametrize("iiou", [True, False])
def test_scores_equal_cityscapesscripts(tmp_path: Path, iiou: bool) -> None:
    rng = np.random.default_rng(8)
    root = tmp_path / "cs"
    preds, gts = write_dataset(root, [scene(rng, 64, 128) for _ in range(4)])
    ref = official(preds, gts, iiou=iiou)
    res = evaluate(root / "results", root, "cityscapes", iiou=iiou, jobs=1, decoder="fast")
    assert_official_equal(official_result(res.stats), ref)
    assert res.miou == pytest.approx(ref["averageScoreClasses"], abs=1e-12)


def test_the_cli_path_takes_the_one_pass_route(tmp_path: Path, monkeypatch) -> None:
    """``_score_pair`` uses the one-pass path for ordinary files (so the speed claim holds)."""
    rng = np.random.default_rng(4)
    pair = write_pair(tmp_path, *scene(rng), filters=(4, 2))
    calls = []
    real = fast.pair_stats
    monkeypatch.setattr(fast, "pair_stats", lambda *a: calls.append(a) or real(*a))
    stats, _ = _score_pair(task(), pair)
    assert len(calls) == 1
    assert_same(stats, decode_and_count(task(kernel="reference"), pair))


def test_pillow_decoder_and_other_kinds_go_the_plain_way(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(6)
    labels, inst, pred = scene(rng)
    pair = write_pair(tmp_path / "a", labels, inst, pred)
    assert fast.pair_stats(pair.gt, pair.pred, pair.instances, "label", "pillow") is None
    # a 16-bit prediction (values fit a byte): not this path, the plain one reads it
    p16 = tmp_path / "a" / "p16.png"
    p16.write_bytes(pngenc.encode(pred.astype(np.uint16), GREY, bit_depth=16))
    assert fast.pair_stats(pair.gt, file(p16), pair.instances, "label", "fast") is None
    pair16 = CityscapesPair(pair.name, pair.gt, pair.instances, file(p16))
    stats, _ = _score_pair(task(), pair16)
    assert_same(stats, decode_and_count(task(kernel="reference"), pair))


def test_bad_input_raises_what_the_plain_path_raises(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    labels, inst, pred = scene(rng)
    t = task()
    # filter type 5 in row 3 of each file in turn: the plain decoder names the file and row
    for which in ("gt", "pred", "instances"):
        pair = write_pair(tmp_path / which, labels, inst, pred)
        path = Path(str(getattr(pair, which)))
        arr = {"gt": labels, "pred": pred, "instances": inst}[which]
        rows = bytearray(b"".join(b"\x00" + r.astype(">u2" if arr.dtype == np.uint16
                                                       else np.uint8).tobytes() for r in arr))
        rows[3 * (arr.shape[1] * arr.itemsize + 1)] = 5
        depth = 16 if arr.dtype == np.uint16 else 8
        path.write_bytes(pngenc.encode(arr, GREY, bit_depth=depth, raw=bytes(rows)))
        assert fast.pair_stats(pair.gt, pair.pred, pair.instances, "label", "fast") is None
        with pytest.raises(FileFormatError,
                           match=rf"{path.name}: corrupt PNG \(row 3 has filter type 5"):
            _score_pair(t, pair)
    # sizes differ
    pair = write_pair(tmp_path / "s", labels, inst, pred)
    Path(str(pair.pred)).write_bytes(pngenc.encode(pred[:, :-1].copy(), GREY))
    with pytest.raises(SizeMismatchError, match=r"_pred\.png: shape"):
        _score_pair(t, pair)
    # a ground-truth id outside the table; the next image is counted from clean tables
    bad_labels = labels.copy()
    bad_labels[0, 0] = 40
    pair = write_pair(tmp_path / "l", bad_labels, inst, pred, filters=(4,))
    with pytest.raises(LabelError, match=r"_labelIds\.png: ground-truth label id 40"):
        _score_pair(t, pair)
    pair = write_pair(tmp_path / "ok", labels, inst, pred, filters=(4,))
    assert_same(*both(pair, True))
    # an instance of a class without instances (sky, 23)
    bad_inst = inst.copy()
    bad_inst[0, 0] = 23001
    pair = write_pair(tmp_path / "i", labels, bad_inst, pred)
    with pytest.raises(LabelError, match=r"_instanceIds\.png: instance id 23001"):
        _score_pair(t, pair)
    # a truncated file
    pair = write_pair(tmp_path / "t", labels, inst, pred)
    gt = Path(str(pair.gt))
    gt.write_bytes(gt.read_bytes()[:-20])
    with pytest.raises(FileFormatError, match=r"_labelIds\.png: corrupt PNG"):
        _score_pair(t, pair)
