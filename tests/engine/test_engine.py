"""Engines: serial, process pool and Dask give bit-identical statistics and rows."""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from segeval import ConfusionMatrix, confusion_matrix, evaluate
from segeval.engine import run
from segeval.errors import DataError, FileFormatError
from segeval.formats.base import Plan
from tests.conftest import random_labels, write_png


def _count(c: int, item: tuple[int, int]):
    seed, size = item
    rng = np.random.default_rng(seed)
    gt = random_labels(rng, (size, size + 3), c)
    pred = rng.integers(0, c, gt.shape).astype(np.uint8)
    cm = confusion_matrix(pred, gt, c)
    return cm, {"item": seed, "pixels": cm.total}


def _finish(stats, rows):
    return stats, rows


ITEMS = [(seed, 5 + seed % 7) for seed in range(23)]


def _plan(items=ITEMS) -> Plan:
    return Plan(format="test", task="semantic", items=items, score=functools.partial(_count, 6),
                zero=ConfusionMatrix(6), finish=_finish)


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_local_engine_is_exact_and_ordered_whatever_the_split(jobs) -> None:
    func = functools.partial(_count, 6)
    expected = [func(item) for item in ITEMS]
    total = expected[0][0]
    for cm, _ in expected[1:]:
        total = total + cm
    done: list[tuple[int, int]] = []
    stats, rows = run(_plan(), jobs=jobs, progress=lambda d, t: done.append((d, t)))
    assert stats == total
    assert rows == [row for _, row in expected]
    assert done[0] == (0, len(ITEMS)) and done[-1] == (len(ITEMS), len(ITEMS))


def test_no_items_finish_the_zero() -> None:
    stats, rows = run(_plan([]))
    assert stats == ConfusionMatrix(6) and rows == []


def _die_on(seed: int, item: tuple[int, int]):
    if item[0] == seed:
        os.kill(os.getpid(), signal.SIGKILL)
    return _count(6, item)


@pytest.mark.parametrize("jobs", [2, 3])
def test_a_dead_worker_is_the_error_of_its_item_not_a_hang(jobs) -> None:
    plan = _plan()
    plan.score = functools.partial(_die_on, 7)
    plan.name_of = lambda item: f"item-{item[0]}.png"
    signal.alarm(30)  # a hang fails the test instead of the suite
    try:
        with pytest.raises(DataError, match=r"^item-7\.png: the worker process scoring it died "
                                            r"\(killed by signal 9, SIGKILL\)"):
            run(plan, jobs=jobs)
    finally:
        signal.alarm(0)


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("dask.distributed", reason="extra [dask] not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_dask_engine_equals_the_local_engine(dask_cluster: str) -> None:
    local = run(_plan(), jobs=1)
    done: list[int] = []
    remote = run(_plan(), scheduler=dask_cluster, progress=lambda d, t: done.append(d))
    assert remote[0] == local[0] and remote[1] == local[1]
    assert done[-1] == len(ITEMS)


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
                 progress=lambda done, total: None)


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
