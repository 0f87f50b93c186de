"""``segeval score --format nifti``: NIfTI label volumes paired by case name, every number
checked against DeepMind's ``surface-distance`` (the test dependency) per case and label, the
JSON means and counts recomputed here from those reference numbers, the per-image CSV, the
table, the options, the mismatch and bad-input errors (one line, exit 1, nothing written),
a missing nibabel (exit 2) and the leaderboard.

surface-distance 0.1 uses ``np.Inf`` / ``np.NaN`` (removed in NumPy 2) in its empty-mask
branches: aliased for the test's duration, the package is not patched.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from surface_distance import metrics as sd_metrics

import segeval
from segeval.cli import cli
from segeval.errors import DataError, FileFormatError, SizeMismatchError, UsageError
from tests.conftest import write_png
from tests.medical_data import MedicalCase, medical_cases, organ_volumes, write_cases, write_nifti

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]
KEYS = ("dice", "iou", "hd95", "assd", "nsd", "volume_gt", "volume_pred")


@pytest.fixture(autouse=True)
def _numpy2_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(np, "Inf", np.inf, raising=False)
    monkeypatch.setattr(np, "NaN", np.nan, raising=False)


def reference(gt: np.ndarray, pred: np.ndarray, spacing, tol: float = 1.0) -> dict[str, float]:
    """One label's numbers by surface-distance, with the documented empty-mask rules applied
    on top of it (both empty: all NaN; one empty: ASSD +inf where the package gives NaN)."""
    g, p = gt.astype(bool), pred.astype(bool)
    voxel = float(np.prod(spacing))
    vols = {"volume_gt": g.sum() * voxel, "volume_pred": p.sum() * voxel}
    if not g.any() and not p.any():
        return {**dict.fromkeys(KEYS[:5], math.nan), **vols}
    d = sd_metrics.compute_surface_distances(g, p, [float(s) for s in spacing])
    assd = float(np.mean(sd_metrics.compute_average_surface_distance(d)))
    return {
        "dice": float(sd_metrics.compute_dice_coefficient(g, p)),
        "iou": float((g & p).sum() / (g | p).sum()),
        "hd95": float(sd_metrics.compute_robust_hausdorff(d, 95)),
        "assd": math.inf if not (g.any() and p.any()) else assd,
        "nsd": float(sd_metrics.compute_surface_dice_at_tolerance(d, tol)),
        **vols,
    }


def close(a: float | None, b: float) -> bool:
    if a is None:
        return not math.isfinite(b)
    if math.isnan(b):
        return math.isnan(a)
    return a == pytest.approx(b, rel=1e-6, abs=1e-12)


def means(values: list[float]) -> tuple[float, int, int]:
    """Mean of the non-NaN values (+inf if any is +inf), how many, how many +inf."""
    kept = [v for v in values if not math.isnan(v)]
    inf = sum(math.isinf(v) for v in kept)
    if not kept:
        return math.nan, 0, inf
    return (math.inf if inf else sum(kept) / len(kept)), len(kept), inf


def zooms(path: Path) -> tuple[float, ...]:
    return tuple(float(z) for z in nib.load(str(path)).header.get_zooms())


def score(args: list[str]):
    return CliRunner().invoke(cli, ["score", "--format", "nifti", "-j", "1", *args])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory):
    cases = medical_cases(21, 5)
    root = tmp_path_factory.mktemp("nifti")
    pred, gt = write_cases(cases, root)
    return cases, pred, gt


def expected_rows(cases: list[MedicalCase], gt_dir: Path, labels, tol: float = 1.0):
    rows = []
    for c in cases:
        sp = zooms(gt_dir / f"{c.name}.nii.gz")
        for lab in labels:
            rows.append({"case": c.name, "label": lab,
                         **reference(c.gt == lab, c.pred == lab, sp, tol)})
    return rows


def test_json_csv_and_table_equal_surface_distance(dataset, tmp_path: Path) -> None:
    cases, pred, gt = dataset
    out, rows_csv = tmp_path / "r.json", tmp_path / "cases.csv"
    r = score(["--gt", str(gt), "--pred", str(pred), "--json", str(out), "--per-image",
               str(rows_csv)])
    assert r.exit_code == 0, r.output
    labels = [1, 2, 3, 4]  # 4 is predicted in one case only
    want = expected_rows(cases, gt, labels)

    # per-image CSV: the columns of the issue, NaN empty, +inf written inf
    with open(rows_csv, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["case", "label", "dice", "iou", "hd95", "assd", "nsd",
                                     "volume_gt", "volume_pred"]
        got = list(reader)
    assert [(g["case"], int(g["label"])) for g in got] == [(w["case"], w["label"])
                                                            for w in want]
    for g, w in zip(got, want, strict=True):
        for k in KEYS:
            text = g[k]
            value = math.nan if text == "" else float(text)
            assert close(value, w[k]), (g, k, w[k])
            if math.isinf(w[k]):
                assert text == "inf"

    # JSON: per-label means over cases, _n, _inf, null for +inf; metrics over labels
    doc = json.loads(out.read_text())
    assert doc["labels"] == labels and doc["num_cases"] == len(cases)
    per_label = {}
    for row, lab in zip(doc["per_class"], labels, strict=True):
        assert row["label"] == lab
        per_label[lab] = {}
        for m in ("dice", "iou", "hd95", "assd", "nsd"):
            mean, n, inf = means([w[m] for w in want if w["label"] == lab])
            per_label[lab][m] = mean
            assert close(row[m], mean), (lab, m, row[m], mean)
            assert row[f"{m}_n"] == n
            if m in ("hd95", "assd"):
                assert row[f"{m}_inf"] == inf
    assert doc["per_class"][2]["hd95"] is None and doc["per_class"][2]["hd95_inf"] == 1
    for m in ("dice", "iou", "hd95", "assd", "nsd"):
        mean, n, inf = means([per_label[lab][m] for lab in labels])
        assert close(doc["metrics"][m], mean), m
        assert doc["metrics"][f"{m}_n"] == n
    assert doc["metrics"]["hd95_inf"] == 2  # labels 3 and 4 have an inf case

    # the table: per-label means and medians
    lines = r.output.splitlines()
    assert lines[0].split() == ["label", "cases", "Dice", "(med)", "IoU", "(med)", "HD95",
                                "(med)", "ASSD", "(med)", "NSD", "(med)"]
    dice_1 = [w["dice"] for w in want if w["label"] == 1]
    assert lines[2].split()[:4] == ["1", f"{len(cases)}/{len(cases)}",
                                    f"{per_label[1]['dice']:.4f}",
                                    f"{float(np.median(dice_1)):.4f}"]
    assert any(line.startswith("mean Dice") for line in lines)


def test_python_api_and_engines_agree(dataset) -> None:
    cases, pred, gt = dataset
    one = segeval.evaluate(pred, gt, "nifti", jobs=1, per_image=True)
    two = segeval.evaluate(pred, gt, "nifti", jobs=2, per_image=True)
    assert json.dumps(one.to_dict()) == json.dumps(two.to_dict())
    assert one.per_image is not None and len(one.per_image) == len(cases) * 4
    assert [r["case"] for r in one.per_image[::4]] == [c.name for c in cases]


def test_labels_tolerance_and_absent_labels(dataset, tmp_path: Path) -> None:
    cases, pred, gt = dataset
    out = tmp_path / "r.json"
    r = score(["--gt", str(gt), "--pred", str(pred), "--labels", "2,9", "--nsd-tolerance",
               "2.5", "--json", str(out), "-q"])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["labels"] == [2, 9]
    want = expected_rows(cases, gt, [2], tol=2.5)
    mean, n, _ = means([w["nsd"] for w in want])
    assert close(doc["per_class"][0]["nsd"], mean) and doc["per_class"][0]["nsd_n"] == n
    assert n == len(cases) - 1  # label 2 is in neither volume of case 3: left out
    assert doc["per_class"][1]["dice"] is None and doc["per_class"][1]["dice_n"] == 0
    assert doc["metrics"]["dice_n"] == 1


def test_flipped_affines_and_anisotropic_spacing(tmp_path: Path) -> None:
    """Volumes stored with flipped axes in their affines (LPS-like): the spacing is the zooms,
    so the numbers are the package's on the arrays with those zooms."""
    rng = np.random.default_rng(4)
    gt, pred = organ_volumes(rng, (26, 22, 14), [(1, 7.0), (2, 3.0)])
    spacing = (0.7, 1.1, 3.0)
    affine = np.diag([-0.7, -1.1, 3.0, 1.0])
    affine[:3, 3] = (10.0, -4.0, 2.0)
    write_cases([MedicalCase("flip", gt, pred, spacing, affine)], tmp_path)
    result = segeval.evaluate(tmp_path / "pred", tmp_path / "gt", "nifti", jobs=1,
                              per_image=True)
    sp = zooms(tmp_path / "gt" / "flip.nii.gz")
    for row in result.per_image:
        want = reference(gt == row["label"], pred == row["label"], sp)
        assert all(close(row[k], want[k]) for k in KEYS), (row, want)


def test_missing_prediction_scored_as_empty(dataset, tmp_path: Path) -> None:
    cases, pred, gt = dataset
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(pred, partial)
    (partial / f"{cases[0].name}.nii.gz").unlink()
    r = score(["--gt", str(gt), "--pred", str(partial), "-q"])
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "--missing zero" in r.stderr
    result = segeval.evaluate(partial, gt, "nifti", jobs=1, missing="zero", per_image=True)
    first = [row for row in result.per_image if row["case"] == cases[0].name]
    assert all(row["dice"] == 0 and row["hd95"] == math.inf for row in first
               if row["volume_gt"] > 0)
    assert result.to_dict()["missing_predictions"] == 1


def test_uncompressed_float_and_wide_integer_volumes(tmp_path: Path) -> None:
    """``.nii`` files, float32 label maps with integer values and int16 labels give the numbers
    of the uint8 volumes."""
    rng = np.random.default_rng(6)
    gt, pred = organ_volumes(rng, (20, 18, 10), [(1, 5.0), (3, 3.0)])
    spacing = (1.2, 0.8, 2.0)
    write_nifti(tmp_path / "a" / "gt" / "x.nii.gz", gt, spacing)
    write_nifti(tmp_path / "a" / "pred" / "x.nii.gz", pred, spacing)
    write_nifti(tmp_path / "b" / "gt" / "sub" / "x.nii", gt.astype(np.int16), spacing)
    write_nifti(tmp_path / "b" / "pred" / "sub" / "x.nii", pred.astype(np.float32), spacing)
    a = segeval.evaluate(tmp_path / "a" / "pred", tmp_path / "a" / "gt", "nifti", jobs=1)
    b = segeval.evaluate(tmp_path / "b" / "pred", tmp_path / "b" / "gt", "nifti", jobs=1,
                         per_image=True)
    assert a.to_dict()["per_class"] == b.to_dict()["per_class"]
    assert b.per_image[0]["case"] == "sub/x"


def test_two_dimensional_images_with_spacing(tmp_path: Path) -> None:
    gt = np.zeros((30, 40), np.uint8)
    gt[5:20, 8:30] = 1
    pred = np.zeros_like(gt)
    pred[7:22, 10:33] = 1
    write_png(tmp_path / "gt" / "slice.png", gt)
    write_png(tmp_path / "pred" / "slice.png", pred)
    for spacing, args in (((1.0, 1.0), []), ((0.5, 2.0), ["--spacing", "0.5,2"])):
        out = tmp_path / "r.json"
        r = score(["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--json",
                   str(out), "-q", *args])
        assert r.exit_code == 0, r.output
        row = json.loads(out.read_text())["per_class"][0]
        want = reference(gt, pred, spacing)
        assert all(close(row[k], want[k]) for k in ("dice", "iou", "hd95", "assd", "nsd"))


# ------------------------------------------------------------------ mismatches and bad input


def _pair(tmp_path: Path, gt: np.ndarray, pred: np.ndarray, gt_sp, pred_sp,
          gt_aff=None, pred_aff=None) -> tuple[Path, Path]:
    write_nifti(tmp_path / "gt" / "c1.nii.gz", gt, gt_sp, gt_aff)
    write_nifti(tmp_path / "pred" / "c1.nii.gz", pred, pred_sp, pred_aff)
    return tmp_path / "pred", tmp_path / "gt"


def _fails(tmp_path: Path, pred: Path, gt: Path, pattern: str, code: int = 1) -> None:
    out = tmp_path / "out.json"
    r = score(["--gt", str(gt), "--pred", str(pred), "--json", str(out), "--per-image",
               str(tmp_path / "rows.csv")])
    assert r.exit_code == code, (r.exit_code, r.output)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output, r.stderr
    assert pattern in r.stderr, r.stderr
    assert not out.exists() and not (tmp_path / "rows.csv").exists()


def test_shape_mismatch(tmp_path: Path) -> None:
    a = np.ones((6, 6, 4), np.uint8)
    pred, gt = _pair(tmp_path, a, np.ones((6, 6, 5), np.uint8), (1, 1, 1), (1, 1, 1))
    _fails(tmp_path, pred, gt, "c1.nii.gz: shape (6, 6, 5), but the ground truth")
    with pytest.raises(SizeMismatchError):
        segeval.evaluate(pred, gt, "nifti", jobs=1)


def test_spacing_mismatch(tmp_path: Path) -> None:
    a = np.ones((6, 6, 4), np.uint8)
    pred, gt = _pair(tmp_path, a, a, (1, 1, 2), (1, 1, 2.5))
    _fails(tmp_path, pred, gt, "c1.nii.gz: voxel spacing 1 x 1 x 2.5 mm, but the ground truth")


def test_orientation_mismatch(tmp_path: Path) -> None:
    a = np.ones((6, 6, 4), np.uint8)
    pred, gt = _pair(tmp_path, a, a, (1, 1, 1), (1, 1, 1), np.eye(4),
                     np.diag([-1.0, 1.0, 1.0, 1.0]))
    _fails(tmp_path, pred, gt, "c1.nii.gz: orientation LAS, but the ground truth")
    with pytest.raises(DataError, match="orientation LAS"):
        segeval.evaluate(pred, gt, "nifti", jobs=1)


def test_not_a_nifti_file(tmp_path: Path) -> None:
    a = np.ones((6, 6, 4), np.uint8)
    pred, gt = _pair(tmp_path, a, a, (1, 1, 1), (1, 1, 1))
    (pred / "c1.nii.gz").write_bytes(gzip.compress(b"hello, not a volume" * 40))
    _fails(tmp_path, pred, gt, "c1.nii.gz: not a NIfTI file")
    (pred / "c1.nii.gz").write_bytes(b"\x1f\x8b garbage")
    _fails(tmp_path, pred, gt, "c1.nii.gz: not a readable .nii.gz file")
    (pred / "c1.nii.gz").unlink()
    (pred / "c1.nii").write_bytes(b"x" * 10)
    _fails(tmp_path, pred, gt, "c1.nii: not a NIfTI file")


def test_truncated_volume(tmp_path: Path) -> None:
    a = np.ones((16, 16, 8), np.uint8)
    pred, gt = _pair(tmp_path, a, a, (1, 1, 1), (1, 1, 1))
    raw = gzip.decompress((pred / "c1.nii.gz").read_bytes())
    (pred / "c1.nii.gz").write_bytes(gzip.compress(raw[:len(raw) // 2]))
    _fails(tmp_path, pred, gt, "c1.nii.gz: not a readable NIfTI file")


def test_four_dimensional_volume(tmp_path: Path) -> None:
    a = np.ones((6, 6, 4), np.uint8)
    pred, gt = _pair(tmp_path, a, np.ones((6, 6, 4, 2), np.uint8), (1, 1, 1), (1, 1, 1))
    _fails(tmp_path, pred, gt, "c1.nii.gz: a 4-D volume of shape (6, 6, 4, 2)")


def test_nan_and_fractional_voxels(tmp_path: Path) -> None:
    a = np.ones((6, 6, 4), np.float32)
    bad = a.copy()
    bad[1, 1, 1] = np.nan
    pred, gt = _pair(tmp_path, a, bad, (1, 1, 1), (1, 1, 1))
    _fails(tmp_path, pred, gt, "c1.nii.gz: 1 voxels are NaN or infinite")
    bad[1, 1, 1] = 0.5
    pred, gt = _pair(tmp_path, a, bad, (1, 1, 1), (1, 1, 1))
    _fails(tmp_path, pred, gt, "c1.nii.gz: voxels with fractional values (e.g. 0.5)")


def test_a_header_declaring_a_huge_volume_is_refused_before_reading(tmp_path: Path) -> None:
    a = np.ones((6, 6, 4), np.uint8)
    pred, gt = _pair(tmp_path, a, a, (1, 1, 1), (1, 1, 1))
    img = nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4))
    raw = bytearray(img.to_bytes())
    raw[42:48] = np.array([30000, 30000, 30000], "<i2").tobytes()
    (pred / "c1.nii.gz").write_bytes(gzip.compress(bytes(raw)))
    _fails(tmp_path, pred, gt, "c1.nii.gz: declares 27000000000000 voxels")


def test_bad_options(tmp_path: Path, dataset) -> None:
    _, pred, gt = dataset
    r = score(["--gt", str(gt), "--pred", str(pred), "--labels", "a,b"])
    assert r.exit_code == 2 and r.stderr.startswith("segeval: error: --labels must be")
    r = score(["--gt", str(gt), "--pred", str(pred), "--spacing", "1,1"])  # 3-D volumes
    assert r.exit_code == 2 and "a 3-D volume, but --spacing has 2 values" in r.stderr
    r = CliRunner().invoke(cli, ["score", "--gt", str(gt), "--pred", str(pred),
                                 "--num-classes", "3", "--labels", "1"])
    assert r.exit_code == 2 and "--labels: not an option of the folder format" in r.stderr


def test_missing_nibabel_is_one_line_exit_2(dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    _, pred, gt = dataset
    monkeypatch.setitem(sys.modules, "nibabel", None)  # import nibabel raises ImportError
    r = score(["--gt", str(gt), "--pred", str(pred)])
    assert r.exit_code == 2
    assert r.stderr == ("segeval: error: the nifti format needs nibabel: pip install "
                        "'segeval[medical]'\n")
    with pytest.raises(UsageError):
        segeval.evaluate(pred, gt, "nifti")


def test_leaderboard_ranks_by_mean_dice_with_intervals_over_cases(dataset,
                                                                  tmp_path: Path) -> None:
    import shutil

    from segeval.leaderboard.runner import run_leaderboard
    from segeval.leaderboard.tasks import MedicalTask

    _, pred, gt = dataset
    subs = tmp_path / "subs"
    shutil.copytree(pred, subs / "noisy")
    shutil.copytree(gt, subs / "perfect")
    board = run_leaderboard(gt, subs, "nifti", jobs=1, labels=(1, 2, 3), resamples=300)
    assert [e["submission"] for e in board.ranked()] == ["perfect", "noisy"]
    noisy = board.ranked()[1]
    doc = segeval.evaluate(pred, gt, "nifti", jobs=1, labels=(1, 2, 3)).to_dict()
    assert noisy["metrics"]["dice"] == doc["metrics"]["dice"]
    assert noisy["ci"]["low"] < doc["metrics"]["dice"] < noisy["ci"]["high"]
    assert noisy["ci"]["method"].startswith("BCa bootstrap over cases")
    # the full sample's replicate is the document's mean (up to the 2^-32 fixed point)
    rows = board.outcomes["noisy"].rows
    task = MedicalTask((1, 2, 3))
    for metric in task.metrics:
        full = task.replicates(None, rows.sum(axis=0)[None, :], metric)[0]
        assert full == pytest.approx(doc["metrics"][metric], abs=1e-9)
    unlabelled = run_leaderboard(gt, subs, "nifti", jobs=1)
    assert [e["submission"] for e in unlabelled.ranked()] == ["perfect", "noisy"]
    assert unlabelled.ranked()[1]["ci"]["low"] is None


def test_two_files_for_one_case_and_no_volumes(tmp_path: Path) -> None:
    a = np.ones((4, 4, 4), np.uint8)
    pred, gt = _pair(tmp_path, a, a, (1, 1, 1), (1, 1, 1))
    write_nifti(gt / "c1.nii", a, (1, 1, 1))
    with pytest.raises(DataError, match="the same case as"):
        segeval.evaluate(pred, gt, "nifti")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no ground-truth label volumes"):
        segeval.evaluate(pred, empty, "nifti")


def test_per_image_json_writes_inf_as_null(dataset, tmp_path: Path) -> None:
    _, pred, gt = dataset
    out = tmp_path / "rows.json"
    r = score(["--gt", str(gt), "--pred", str(pred), "--per-image", str(out), "-q"])
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())
    assert any(row["hd95"] is None and row["volume_pred"] == 0 and row["volume_gt"] > 0
               for row in rows)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    from segeval.formats.base import File, Folder
    from segeval.formats.nifti import read_volume

    (tmp_path / "x.nii").write_bytes(b"\0" * 400)
    with pytest.raises(FileFormatError, match=r"x\.nii: not a NIfTI file"):
        read_volume(File(Folder(tmp_path), "x.nii"))


def test_leaderboard_command_takes_labels_for_intervals(dataset, tmp_path: Path) -> None:
    """``segeval leaderboard --format nifti --labels 1,2,3``: ranked with intervals over cases,
    the same numbers as ``run_leaderboard(labels=...)``."""
    import json
    import shutil

    from segeval.cli import cli

    _, pred, gt = dataset
    subs = tmp_path / "subs"
    shutil.copytree(pred, subs / "noisy")
    shutil.copytree(gt, subs / "perfect")
    r = CliRunner().invoke(cli, ["leaderboard", "--format", "nifti", "--gt", str(gt),
                                 "--submissions", str(subs), "--labels", "1,2,3", "-j", "1",
                                 "--resamples", "200", "--no-plots", "-q",
                                 "--out", str(tmp_path / "board")])
    assert r.exit_code == 0, r.output
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    entries = [e for e in board if e["status"] == "ok"]
    assert [e["submission"] for e in entries] == ["perfect", "noisy"]
    doc = segeval.evaluate(pred, gt, "nifti", jobs=1, labels=(1, 2, 3)).to_dict()
    assert entries[1]["metrics"]["dice"] == pytest.approx(doc["metrics"]["dice"], abs=1e-12)
    assert entries[1]["ci"]["low"] is not None and entries[1]["ci"]["method"].startswith("BCa")
    r = CliRunner().invoke(cli, ["leaderboard", "--format", "nifti", "--gt", str(gt),
                                 "--submissions", str(subs), "--labels", "one"])
    assert r.exit_code == 2 and "is not a comma-separated list of integer labels" in r.output
