"""``segeval score --device cuda``: the batched engine, and its errors where there is no GPU.

The batching (stacks of pairs of one shape, a bad file named after a batch fails, per-image rows,
missing predictions) is the same code whatever the device; here it runs with ``device="cpu"``
and must give the CPU pipeline's exact result. Where CuPy and a GPU exist, the real
``--device cuda`` command is compared with the CPU command too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from segeval import confusion_matrix, evaluate
from segeval.cli import cli
from segeval.engine.cuda import batched
from segeval.errors import LabelError, SizeMismatchError, UsageError
from segeval.formats import folder
from segeval.formats.base import Folder, Options
from tests.conftest import random_labels, write_png

C = 5


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, list[tuple[np.ndarray, np.ndarray]]]:
    """Eleven pairs in two sizes, so batches break on a shape change and on the batch size."""
    rng = np.random.default_rng(21)
    pairs = []
    for i in range(11):
        shape = (19, 27) if i % 4 != 3 else (23, 16)
        gt = random_labels(rng, shape, C)
        pred = np.where(rng.random(shape) < 0.6, gt % C, rng.integers(0, C, shape)).astype(
            np.uint8)
        write_png(tmp_path / "gt" / f"im{i:02d}.png", gt)
        write_png(tmp_path / "pred" / f"im{i:02d}.png", pred)
        pairs.append((pred, gt))
    return tmp_path / "pred", tmp_path / "gt", pairs


def _plan(pred: Path, gt: Path, per_image: bool = False, missing: str = "error") -> object:
    """The folder format's plan of the pairs (what ``segeval score`` runs)."""
    options = Options(num_classes=C, per_image=per_image, missing=missing)  # type: ignore[arg-type]
    return folder.plan(Folder(pred), folder.reference(gt, options), options)


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("jobs", [1, 2])
def test_batched_equals_one_big_matrix(files, batch: int, jobs: int) -> None:
    pred, gt, arrays = files
    expected = confusion_matrix(np.concatenate([p.ravel() for p, _ in arrays]),
                                np.concatenate([g.ravel() for _, g in arrays]), C)
    seen = []
    results = list(batched(_plan(pred, gt), device="cpu", jobs=jobs, batch=batch,
                           progress=seen.append))
    total = results[0][0]
    for cm, row in results[1:]:
        total += cm
        assert row is None
    assert total == expected and sum(seen) == 11
    assert len(results) >= -(-11 // batch)  # shape changes only add batches


def test_per_image_rows_and_missing_prediction(files) -> None:
    pred, gt, arrays = files
    (pred / "im04.png").unlink()
    plan = _plan(pred, gt, per_image=True, missing="zero")
    results = list(batched(plan, device="cpu", jobs=1))
    assert [row["image"] for _, row in results] == [f"im{i:02d}" for i in range(11)]
    for i, (cm, row) in enumerate(results):
        p, g = arrays[i]
        if i == 4:
            assert row["missing"] and int(cm.matrix.sum()) == 0 and cm.total == (g != 255).sum()
        else:
            assert cm == confusion_matrix(p, g, C)
            assert row["miou"] == pytest.approx(float(cm.miou()), abs=0)


def test_bad_label_in_a_batch_names_its_file(files) -> None:
    pred, gt, arrays = files
    bad = arrays[6][0].copy()
    bad[0, 0] = 9
    write_png(pred / "im06.png", bad)
    with pytest.raises(LabelError, match=r"im06\.png: predicted label 9 is not a class"):
        list(batched(_plan(pred, gt), device="cpu", jobs=1, batch=8))


def test_size_mismatch_names_its_file(files) -> None:
    pred, gt, _ = files
    write_png(pred / "im01.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(SizeMismatchError, match=r"im01\.png: shape \(4, 4\)"):
        list(batched(_plan(pred, gt), device="cpu", jobs=1))


def test_evaluate_cpu_and_auto_devices_equal_the_default(files) -> None:
    pred, gt, _ = files
    base = evaluate(pred, gt, "folder", num_classes=C, jobs=1)
    for device in ("cpu", "auto"):
        assert evaluate(pred, gt, "folder", num_classes=C, jobs=1, device=device).to_dict() \
            == base.to_dict()


def test_device_cuda_does_not_combine_with_a_cluster(files) -> None:
    pred, gt, _ = files
    with pytest.raises(UsageError, match="device='cuda' counts on this machine's GPU; it does "
                                         "not run on scheduler 'dask-local'"):
        evaluate(pred, gt, "folder", num_classes=C, device="cuda", scheduler="dask-local")


def _gpu_available() -> str | None:
    from segeval.core.device import require_cuda
    from segeval.errors import DeviceError

    try:
        require_cuda()
    except DeviceError as e:
        return str(e)
    return None


def test_score_device_cuda_without_gpu_is_one_line_exit_2(files, tmp_path: Path,
                                                           monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # as on a machine without CuPy
    pred, gt, _ = files
    out = tmp_path / "r.json"
    r = CliRunner().invoke(cli, ["score", "--pred", str(pred), "--gt", str(gt), "--num-classes",
                                 str(C), "--device", "cuda", "--json", str(out)])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("segeval: error: --device cuda needs CuPy")
    assert "pip install segeval[gpu]" in r.stderr and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr and not out.exists()


def test_score_device_cuda_equals_cpu_on_a_gpu(files, tmp_path: Path) -> None:
    reason = _gpu_available()
    if reason is not None:
        pytest.skip(f"needs CuPy and a CUDA device: {reason}")
    pred, gt, _ = files
    docs = []
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.json"
        r = CliRunner().invoke(cli, ["score", "--pred", str(pred), "--gt", str(gt),
                                     "--num-classes", str(C), "--device", device,
                                     "--json", str(out), "-q"])
        assert r.exit_code == 0, r.output
        docs.append(json.loads(out.read_text()))
    assert docs[0] == docs[1]
