"""3-D medical label volumes (NIfTI): Dice, IoU and surface distances per case and label.

Ground truth and predictions are folders of label volumes, ``.nii`` or ``.nii.gz`` (NIfTI-1 or
NIfTI-2), paired by file name (the path below the folder without ``.nii``/``.nii.gz``: the
*case*), e.g. nnU-Net's ``labelsTs/`` and its predictions. 2-D label images (``.png``, or a
2-D NIfTI) work too; a PNG has no spacing header, so its pixels are ``--spacing`` mm (default
1 x 1).

Each volume's voxel spacing is its header's (``pixdim``, the zooms, in the array's own axis
order, in mm; a header in metres or microns is converted). A prediction must have its ground
truth's shape and spacing (relative difference at most 1e-4) and, where both headers give an
orientation (a qform or sform code), the same axis orientation; else one line naming the
prediction and what differs. ``spacing=`` replaces every header's spacing.

Values: any integer dtype; a float volume whose values are all integers (a scaled or float
label map) is accepted, one with NaN or fractional voxels is refused. ``labels`` picks the
foreground labels (default: every non-zero value in the ground truth or the predictions);
other values are background.

Each case is scored in a worker (:func:`segeval.core.surface.case_metrics`); the statistics
are the per-case rows (:class:`~segeval.core.medical.CaseStats`) and the result a
:class:`~segeval.core.medical.MedicalResult`. Needs ``nibabel`` (``pip install
'segeval[medical]'``).
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segeval.core.medical import CaseRow, CaseStats, MedicalResult
from segeval.errors import (
    DataError,
    FileFormatError,
    MissingFileError,
    SizeMismatchError,
    UsageError,
)
from segeval.formats.base import (
    File,
    Folder,
    KeyedGroundTruth,
    Options,
    Pair,
    Plan,
    Tree,
    check_missing,
    require_folder,
)

TASK = "medical"
#: The options of this format.
OPTIONS = frozenset({"labels", "nsd_tolerance", "spacing", "missing"})
#: File endings read, longest first (the case name is the path without it).
SUFFIXES = (".nii.gz", ".nii", ".png")
#: The largest volume read (voxels): a header that declares more is refused before reading.
MAX_VOXELS = 1 << 31
#: Relative difference of spacings still taken as equal (headers store float32 zooms).
SPACING_RTOL = 1e-4
_UNITS_MM = {"mm": 1.0, "meter": 1000.0, "micron": 0.001, "unknown": 1.0}


def require_nibabel() -> Any:
    """The ``nibabel`` module, or a :class:`~segeval.errors.UsageError` (exit 2) saying how to
    install it."""
    try:
        import nibabel
    except ImportError:
        raise UsageError("the nifti format needs nibabel: pip install 'segeval[medical]'"
                         ) from None
    return nibabel


@dataclass(frozen=True)
class Volume:
    """A decoded label volume: integer ``array`` (2-D or 3-D), ``spacing`` in mm per axis,
    and the axis codes of its orientation (``("R", "A", "S")``) where its header gives one."""

    array: np.ndarray
    spacing: tuple[float, ...]
    orientation: tuple[str, ...] | None


@dataclass(frozen=True)
class MedicalReference(KeyedGroundTruth):
    """The ground truth: its files by case (in report order) and the scoring options."""

    format: str
    gt: dict[str, File]
    labels: tuple[int, ...] | None
    tolerance: float
    spacing: tuple[float, ...] | None


    @property
    def class_names(self) -> tuple[str, ...]:
        return () if self.labels is None else tuple(str(v) for v in self.labels)

    def settings(self) -> dict[str, Any]:
        return {"format": self.format,
                "labels": None if self.labels is None else list(self.labels),
                "nsd_tolerance_mm": self.tolerance,
                "spacing": None if self.spacing is None else list(self.spacing),
                "hd_percentile": 95}


def case_files(tree: Tree, where: object) -> dict[str, File]:
    """The label files of ``tree`` (:data:`SUFFIXES`, any case) keyed by case name; a
    :class:`~segeval.errors.DataError` for two files of one case (``a.nii``, ``a.nii.gz``)."""
    found: dict[str, File] = {}
    for member in tree.files():
        lower = member.lower()
        suffix = next((s for s in SUFFIXES if lower.endswith(s)), None)
        if suffix is None or member.rsplit("/", 1)[-1].startswith("."):
            continue
        key = member[:-len(suffix)]
        if key in found:
            raise DataError(f"{tree.display(member)}: the same case as {found[key]} (two files "
                            f"for one case)")
        found[key] = File(tree, member)
    return found


def reference(gt: Path, options: Options) -> MedicalReference:
    """List the ground-truth volumes of the folder ``gt``."""
    options.check("nifti", OPTIONS)
    gt = Path(gt)
    require_folder(gt, "ground-truth")
    files = case_files(Folder(gt), gt)
    if not files:
        raise MissingFileError(f"{gt}: no ground-truth label volumes (.nii, .nii.gz or .png) "
                               f"found")
    if any(not f.member.lower().endswith(".png") for f in files.values()):
        require_nibabel()
    import scipy.spatial  # noqa: F401  (loaded once here: forked workers inherit it)
    return MedicalReference("nifti", files, options.labels, float(options.nsd_tolerance),
                            options.spacing)


# ------------------------------------------------------------------------------ reading


def _inflate(file: File, data: bytes) -> bytes | bytearray:
    """The bytes of a gzip-compressed NIfTI file, bounded by the size its header declares:
    libdeflate (the ``deflate`` package) where the gzip trailer announces that size, else
    zlib, stopping after it."""
    d = zlib.decompressobj(wbits=31)
    try:
        head = d.decompress(data, 544)
        size = _declared_size(file, head)
        announced = int.from_bytes(data[-4:], "little")  # ISIZE: the size mod 2**32
        if size <= announced <= size + (1 << 20):
            try:
                import deflate

                return deflate.gzip_decompress(data)
            except Exception:  # several gzip members, or no deflate: zlib below
                pass
        body = d.decompress(d.unconsumed_tail, max(1, size - len(head)))
    except zlib.error as e:
        raise FileFormatError(f"{file}: not a readable .nii.gz file ({e})") from None
    return head + body


def _declared_size(file: File, head: bytes) -> int:
    """Header + voxel bytes a NIfTI header announces (refused over :data:`MAX_VOXELS`)."""
    if len(head) < 348:
        raise FileFormatError(f"{file}: not a NIfTI file (only {len(head)} bytes)")
    for order in ("<", ">"):
        sizeof = int(np.frombuffer(head[:4], np.dtype(f"{order}i4"))[0])
        if sizeof == 348:
            dims = np.frombuffer(head[40:56], np.dtype(f"{order}i2")).astype(np.int64)
            bitpix = int(np.frombuffer(head[72:74], np.dtype(f"{order}i2"))[0])
            offset = float(np.frombuffer(head[108:112], np.dtype(f"{order}f4"))[0])
            break
        if sizeof == 540 and len(head) >= 540:
            dims = np.frombuffer(head[16:80], np.dtype(f"{order}i8")).astype(np.int64)
            bitpix = int(np.frombuffer(head[14:16], np.dtype(f"{order}i2"))[0])
            offset = float(np.frombuffer(head[168:176], np.dtype(f"{order}i8"))[0])
            break
    else:
        raise FileFormatError(f"{file}: not a NIfTI file (no NIfTI-1 or NIfTI-2 header)")
    n = int(dims[0])
    if not 1 <= n <= 7 or (dims[1:n + 1] < 1).any():
        raise FileFormatError(f"{file}: not a NIfTI file (dimensions {dims[:n + 1].tolist()})")
    voxels = math.prod(int(v) for v in dims[1:n + 1])
    if voxels > MAX_VOXELS:
        raise FileFormatError(f"{file}: declares {voxels} voxels (more than {MAX_VOXELS})")
    return int(max(offset, 0)) + voxels * max(bitpix // 8, 1)


def _as_labels(file: File, arr: np.ndarray) -> np.ndarray:
    """An integer label array: integers as they are, booleans as uint8, floats whose values
    are all integers converted; anything else a :class:`~segeval.errors.FileFormatError`."""
    kind = arr.dtype.kind
    if kind in "ui":
        return arr
    if kind == "b":
        return arr.view(np.uint8)
    if kind != "f":
        raise FileFormatError(f"{file}: voxels of type {arr.dtype} are not labels (expected "
                              f"integers)")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        raise FileFormatError(f"{file}: {bad} voxels are NaN or infinite (expected integer "
                              f"labels)")
    if arr.size and not np.array_equal(arr, np.round(arr)):
        raise FileFormatError(f"{file}: voxels with fractional values (e.g. "
                              f"{float(arr[arr != np.round(arr)][0])}); expected integer "
                              f"labels")
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    for dtype in (np.uint8, np.uint16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return arr.astype(dtype)
    raise FileFormatError(f"{file}: label values out of range ({lo}..{hi})")


def read_volume(file: File, spacing: tuple[float, ...] | None = None, decoder: str = "auto"
                ) -> Volume:
    """Decode one label file (NIfTI or 2-D PNG) as a :class:`Volume`; ``spacing`` replaces
    the header's. One-line :class:`~segeval.errors.SegevalError` naming the file for
    anything that is not a 2-D or 3-D integer label volume with a positive spacing."""
    if file.member.lower().endswith(".png"):
        from segeval.formats.png import read_label

        arr = read_label(file, decoder=decoder)  # type: ignore[arg-type]
        if spacing is not None and len(spacing) != 2:
            raise UsageError(f"{file}: a 2-D image, but spacing has {len(spacing)} values",
                             parameters=("spacing",))
        return Volume(arr, spacing or (1.0, 1.0), None)
    nib = require_nibabel()
    data = file.read()
    if data[:2] == b"\x1f\x8b":
        data = _inflate(file, data)
    else:
        _declared_size(file, data[:544])
    try:
        sizeof = int.from_bytes(data[:4], "little")
        cls = nib.Nifti2Image if sizeof == 540 or int.from_bytes(data[:4], "big") == 540 \
            else nib.Nifti1Image
        img = cls.from_bytes(data)
        arr = np.asanyarray(img.dataobj)
    except Exception as e:  # nibabel's errors are of many kinds: all mean "not readable"
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise FileFormatError(f"{file}: not a readable NIfTI file ({reason})") from None
    shape = arr.shape
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise FileFormatError(f"{file}: a {len(shape)}-D volume of shape {tuple(shape)} "
                              f"(expected a 2-D or 3-D label volume)")
    arr = _as_labels(file, arr)
    header = img.header
    if spacing is None:
        unit = header.get_xyzt_units()[0]
        scale = _UNITS_MM.get(unit, 1.0)
        zooms = tuple(float(z) * scale for z in header.get_zooms()[:arr.ndim])
        if len(zooms) != arr.ndim or not all(math.isfinite(z) and z > 0 for z in zooms):
            raise FileFormatError(f"{file}: voxel spacing {zooms} in the header is not "
                                  f"positive (give spacing= to set it)")
        spacing = zooms
    elif len(spacing) != arr.ndim:
        raise UsageError(f"{file}: a {arr.ndim}-D volume, but spacing has {len(spacing)} "
                         f"values", parameters=("spacing",))
    orientation = None
    if int(header["sform_code"]) > 0 or int(header["qform_code"]) > 0:
        try:
            orientation = tuple(str(c) for c in nib.aff2axcodes(img.affine))[:arr.ndim]
        except Exception:  # a degenerate affine says nothing about orientation
            orientation = None
    return Volume(arr, tuple(spacing), orientation)


# ------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class _Task:
    """What a worker needs to score one case (picklable)."""

    labels: tuple[int, ...] | None
    tolerance: float
    spacing: tuple[float, ...] | None
    decoder: str = "auto"


def load_gt(task: _Task, pair: Pair) -> Volume:
    """Decode a case's ground truth."""
    return read_volume(pair.gt, task.spacing, task.decoder)


def check_pair(pair: Pair, gt: Volume, pred: Volume) -> None:
    """One line naming the prediction if its shape, spacing or orientation is not the ground
    truth's."""
    if pred.array.shape != gt.array.shape:
        raise SizeMismatchError(f"{pair.pred}: shape {pred.array.shape}, but the ground truth "
                                f"{pair.gt} has shape {gt.array.shape}")
    if not np.allclose(pred.spacing, gt.spacing, rtol=SPACING_RTOL, atol=0):
        raise DataError(f"{pair.pred}: voxel spacing {_mm(pred.spacing)} mm, but the ground "
                        f"truth {pair.gt} has {_mm(gt.spacing)} mm")
    if (gt.orientation is not None and pred.orientation is not None
            and gt.orientation != pred.orientation):
        raise DataError(f"{pair.pred}: orientation {''.join(pred.orientation)}, but the "
                        f"ground truth {pair.gt} is {''.join(gt.orientation)}")


def _mm(spacing: tuple[float, ...]) -> str:
    return " x ".join(f"{s:g}" for s in spacing)


def score_with(task: _Task, pair: Pair, gt: Volume) -> tuple[CaseStats, None]:
    """Score one case against its decoded ground truth."""
    from segeval.core.surface import case_metrics

    pred = None
    if pair.pred is not None:
        pred_volume = read_volume(pair.pred, task.spacing, task.decoder)
        check_pair(pair, gt, pred_volume)
        pred = pred_volume.array
    labels, values = case_metrics(gt.array, pred, gt.spacing, task.labels, task.tolerance)
    return CaseStats((CaseRow(pair.name, labels, values, pair.pred is None),)), None


def score_case(task: _Task, pair: Pair) -> tuple[CaseStats, None]:
    """Decode and score one case."""
    return score_with(task, pair, load_gt(task, pair))


def _finish(task: _Task, names: tuple[str, ...], per_image: bool, settings: dict[str, Any],
            stats: CaseStats, rows: list[dict[str, Any]]) -> MedicalResult:
    return MedicalResult.from_stats(stats, task.labels, order=names, per_image=per_image,
                                    settings=settings)


def _pair_name(pair: Pair) -> str:
    return str(pair.pred if pair.pred is not None else pair.gt)


def plan(pred: Tree, ref: MedicalReference, options: Options) -> Plan:
    """Pair the prediction volumes of ``pred`` with ``ref`` by case name."""
    if isinstance(pred, Folder):
        require_folder(pred.root, "prediction")
    pred_files = case_files(pred, pred.root)
    pairs = [Pair(name, gt, pred_files.get(name)) for name, gt in ref.gt.items()]
    extra = [p for name, p in pred_files.items() if name not in ref.gt]
    check_missing(pairs, options.missing, pred.root, what="prediction volume",
                  hint="score them as empty predictions", counted="are scored as empty",
                  extra=extra)
    task = _Task(ref.labels, ref.tolerance, ref.spacing, options.decoder)
    settings = {**ref.settings(), "missing": options.missing}
    return Plan(
        format=ref.format, task=TASK, items=pairs,
        score=functools.partial(score_case, task),
        zero=CaseStats(),
        finish=functools.partial(_finish, task, ref.names, options.per_image, settings),
        name_of=_pair_name,
        load_gt=functools.partial(load_gt, task),
        score_with=functools.partial(score_with, task),
        matched=sum(p.pred is not None for p in pairs),
        settings=settings,
    )
