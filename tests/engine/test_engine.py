"""Engines: serial, process pool and Dask give bit-identical statistics and rows."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from segeval import confusion_matrix, evaluate
from segeval.engine import reduce_items
from segeval.errors import FileFormatError
from tests.conftest import random_labels, write_png


def _count(c: int, item: tuple[int, int]):
    seed, size = item
    rng = np.random.default_rng(seed)
    gt = random_labels(rng, (size, size + 3), c)
    pred = rng.integers(0, c, gt.shape).astype(np.uint8)
    cm = confusion_matrix(pred, gt, c)
    return cm, {"item": seed, "pixels": cm.total}


ITEMS = [(seed, 5 + seed % 7) for seed in range(23)]


@pytest.mark.parametrize(("jobs", "chunk_size"), [(1, None), (1, 5), (2, None), (2, 1), (3, 4)])
def test_local_engine_is_exact_and_ordered_whatever_the_split(jobs, chunk_size) -> None:
    func = functools.partial(_count, 6)
    expected = [func(item) for item in ITEMS]
    total = expected[0][0]
    for cm, _ in expected[1:]:
        total = total + cm
    done: list[int] = []
    stats, rows = reduce_items(func, ITEMS, jobs=jobs, chunk_size=chunk_size,
                               progress=done.append)
    assert stats == total
    assert rows == [row for _, row in expected]
    assert sum(done) == len(ITEMS)


def test_no_items_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        reduce_items(functools.partial(_count, 3), [])


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("dask.distributed", reason="extra [dask] not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_dask_engine_equals_the_local_engine(dask_cluster: str) -> None:
    func = functools.partial(_count, 6)
    local = reduce_items(func, ITEMS, jobs=1)
    for chunk_size in (None, 1, 4):
        done: list[int] = []
        remote = reduce_items(func, ITEMS, scheduler=dask_cluster, chunk_size=chunk_size,
                              progress=done.append)
        assert remote[0] == local[0] and remote[1] == local[1]
        assert sum(done) == len(ITEMS)


def _dataset(tmp_path: Path, n: int = 9) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    for i in range(n):
        gt = random_labels(rng, (30, 41), 5)
        write_png(tmp_path / "gt" / f"im{i}.png", gt)
        write_png(tmp_path / "pred" / f"im{i}.png", rng.integers(0, 5, gt.shape))
    return tmp_path / "pred", tmp_path / "gt"


def test_semantic_task_on_dask_is_bit_identical(tmp_path: Path, dask_cluster: str) -> None:
    pred, gt = _dataset(tmp_path)
    local = evaluate(pred, gt, "folder", num_classes=5, jobs=2, per_image=True)
    remote = evaluate(pred, gt, "folder", num_classes=5, scheduler=dask_cluster,
                      per_image=True)
    assert remote.confusion == local.confusion
    assert remote.per_image == local.per_image
    assert remote.to_dict() == local.to_dict()


def test_a_bad_file_on_dask_is_reported_by_name(tmp_path: Path, dask_cluster: str) -> None:
    pred, gt = _dataset(tmp_path)
    (pred / "im4.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    with pytest.raises(FileFormatError, match=r"pred/im4\.png: corrupt PNG"):
        evaluate(pred, gt, "folder", num_classes=5, scheduler=dask_cluster)
    with pytest.raises(FileFormatError, match=r"pred/im4\.png: corrupt PNG"):
        evaluate(pred, gt, "folder", num_classes=5, scheduler=dask_cluster,
                 progress=lambda k: None)


def test_cli_scheduler_dask_local(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed", reason="extra [dask] not installed")
    from tests.test_cli import run

    pred, gt = _dataset(tmp_path)
    for args, out in [((), "local.json"), (("--scheduler", "dask-local", "-j", "2"), "dask.json")]:
        r = run("score", "--pred", pred, "--gt", gt, "--num-classes", 5, "--json",
                tmp_path / out, "-q", *args)
        assert r.exit_code == 0, r.stderr
    assert (tmp_path / "local.json").read_text() == (tmp_path / "dask.json").read_text()


def test_panoptic_task_on_dask_is_bit_identical(conformance: Path, dask_cluster: str) -> None:
    suite = conformance / "coco_panoptic"
    pred = suite / "cases" / "c06_mixed" / "panoptic_pred.json"
    gt = suite / "gt" / "panoptic_examples.json"
    local = evaluate(pred, gt, "coco-panoptic", jobs=1, per_image=True)
    remote = evaluate(pred, gt, "coco-panoptic", scheduler=dask_cluster, per_image=True)
    assert remote.to_dict() == local.to_dict()
    assert remote.per_image == local.per_image
    assert local.to_dict()["metrics"]["n"] > 0
