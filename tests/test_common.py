"""Invariants every format must keep, checked on one small generated dataset per adapter of
:data:`segeval.formats.registry.ADAPTERS` (the model: scikit-learn's ``test_common.py``).

Each entry of :data:`CASES` writes a few tiny images of one format to disk and names the
:func:`segeval.evaluate` options it needs; each invariant below is parametrised over the cases
it applies to. A combination where an invariant does not hold by definition has no test (not a
skipped one); the table says which, and why.

===================== ======= ============== ======= ======= =====
case                  engines order / shards permute ignore  state
===================== ======= ============== ======= ======= =====
voc                   yes +b  any order      yes     yes     yes
folder                yes +b  any order      yes     yes     yes
cityscapes (semantic) yes     any order      no (1)  yes (2) yes
cityscapes/instance   yes     any order (3)  no (1)  no (4)  no (5)
coco (instance)       yes     one item (6)   yes (7) no (4)  no (5)
coco-panoptic         yes     any order      yes     no (8)  yes
cityscapes-panoptic   yes     any order      yes (9) no (8)  yes
ade20k                yes +b  any order      no (10) yes     yes
nifti                 yes     any order      no (11) no (11) no (12)
===================== ======= ============== ======= ======= =====

engines
    ``jobs=1``, ``jobs=2`` (the supervised pool) and a Dask cluster (``scheduler=<address>``)
    give the same ``to_dict()`` and the same ``per_image`` rows (every format but the instance
    ones, which have no rows). ``+b``: pairs of label PNGs also have the GPU engine's batches
    (``segeval.engine.cuda.reduce(plan, device="cpu")``: decoding in workers, counting stacked
    pairs), which must give the local engine's statistics.
order / shards
    ``plan.finish`` of the statistics summed in item order equals that of contiguous shards
    summed separately and then added, and ("any order") of the sum in a shuffled order.
permute
    Relabelling the classes by a permutation in ground truth and prediction permutes the
    per-class rows (and the confusion matrix) the same way and leaves every mean unchanged.
ignore
    Changing the prediction at the ground truth's ignored pixels changes nothing.
state
    ``state_bytes(result)`` written and read back by ``merge_states`` gives the same
    ``to_dict()`` (a merged state has no ``per_image`` rows: they are not in the state), and
    the states of two shards merge to the result of one run over both.

(1) Cityscapes label ids are fixed by the official label table (which ids are evaluated, their
    categories, the instance classes, the iIoU class sizes): relabelled files are other data,
    not the same data under other names.
(2) The pixels whose ground-truth label id is ignored in evaluation (0-6, 9, 10, 14-16, 18,
    29, 30) never count: the official IoU takes FN from the class's ground-truth row and FP only
    from rows of evaluated classes, category IoU likewise, and instances of the ignored caravan
    and trailer are skipped. What changes is the raw 34 x 34 label-id matrix that the result
    also reports (``label_confusion_matrix``, the official ``confMatrix``, which counts every
    pixel): the test checks that only its ignored rows change. The new predictions are label
    ids 0..33, not arbitrary bytes: an unknown predicted id is an error anywhere in the image,
    as in the official script.
(3) The official AP's statistic (the matching's true/false positives with their confidence, a
    multiset: ties are one precision-recall point) adds up in any order. With ``ap="coco"`` the
    statistic (the images' COCO parts) is concatenated, not added, and COCO AP depends on
    the order of tied detections; but COCOeval orders them by image id (sorted), then as given
    within an image, and the plan numbers the images when it pairs them, not when it merges
    them. So whole images merge in any order; the data have score ties across images that
    numbering in merge order would reorder (``test_instance_ties_are_ordered_by_image``).
(4) Instance ground truth has no ignore label: a crowd (group) region is scored (a detection
    that matches it is ignored, one that does not is a false positive).
(5) :mod:`segeval.engine.state` has no instance task: COCO AP is not a sum over images.
(6) The coco plan has one item (the results file): shards and orders are trivial, and the
    test checks that ``plan.zero`` is neutral on both sides.
(7) COCOeval evaluates every category on its own (detections are ranked per category), so
    category ids are names; only the averages over categories are summed in another order.
(8) Panoptic VOID pixels are not ignored: a predicted segment's pixels on VOID leave its IoU
    union but decide whether an unmatched segment is a false positive (more than half on VOID:
    not counted), so changing the prediction on VOID changes the counts.
(9) The cityscapes-panoptic category table is the ground-truth JSON's own (the adapter never
    reads the label table), so its ids are names as for coco-panoptic.
(10) ADE20K's 150 classes and their names are fixed by the benchmark (``objectInfo150``), as
    Cityscapes' label table is (1). Its ignored pixels are the ground truth's 0 and 255 (after
    ``reduce_zero_label``); the new predictions there are its prediction values 0..150.
(11) nifti labels are values, not classes of a table: relabelling changes which rows exist
    (checked in tests/formats/test_nifti.py), and there is no ignore label. Its per-image rows
    are one per case *and label* (``rows=False`` here; tests/formats/test_nifti.py checks them).
(12) :mod:`segeval.engine.state` has no medical task: a mean of per-case Dice is not a sum of
    counts (the per-case rows are the statistics).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dask.distributed
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

import segeval
from segeval.core.instance import InstanceParts
from segeval.engine import cuda, local
from segeval.engine.state import TASKS as STATE_TASKS
from segeval.engine.state import merge_states, state_bytes
from segeval.formats.base import Folder, Options
from segeval.formats.cityscapes.labels import BY_ID
from segeval.formats.registry import ADAPTERS, get_adapter
from segeval.formats.voc import CLASS_NAMES as VOC_CLASSES
from tests.cityscapes_data import STUFF, scene
from tests.conftest import random_labels, write_png
from tests.medical_data import medical_cases, write_cases
from tests.panoptic_data import CATEGORIES as PANOPTIC_CATEGORIES
from tests.panoptic_data import PanopticImage, id2rgb, random_image, write_set

N = 6  # images per case

# ------------------------------------------------------------------------------ comparisons


def plain(x: Any) -> Any:
    """``x`` with NaN as the string ``"nan"`` and NumPy scalars as Python ones, so that ``==``
    compares results exactly (NaN equal to NaN) and pytest shows a readable diff."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return x


def assert_close(a: Any, b: Any, where: str = "") -> None:
    """``a == b`` up to rounding of floats (means summed in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_close(u, v, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert (math.isnan(a) and math.isnan(b)) or b == pytest.approx(a, rel=1e-12, abs=1e-15), \
            (where, a, b)
    else:
        assert a == b, (where, a, b)


# ------------------------------------------------------------------------------ semantic data


@dataclass
class SemanticImage:
    name: str
    gt: np.ndarray
    pred: np.ndarray


# two shapes, grouped so that the GPU engine's batches hold several pairs and single ones
SHAPES = [(9, 13)] * 3 + [(11, 7)] * 2 + [(9, 13)] * (N - 5)


def semantic_images(seed: int, num_classes: int, present: Sequence[int]) -> list[SemanticImage]:
    """Ground truth of the classes ``present`` with 10 % ignore (255), a noisy prediction."""
    rng = np.random.default_rng(seed)
    present = np.asarray(present)
    out = []
    for i, shape in enumerate(SHAPES):
        gt = present[random_labels(rng, shape, len(present), ignore=0)]
        gt[rng.random(shape) < 0.1] = 255
        pred = np.where(rng.random(shape) < 0.7, gt, rng.integers(0, num_classes, shape))
        pred[gt == 255] = rng.integers(0, num_classes, int((gt == 255).sum()))
        out.append(SemanticImage(f"{'sub/' if i % 2 else ''}im{i}", gt.astype(np.uint8),
                                 pred.astype(np.uint8)))
    return out


def write_folder(images: Sequence[SemanticImage], root: Path) -> tuple[Path, Path]:
    for im in images:
        write_png(root / "gt" / f"{im.name}.png", im.gt)
        write_png(root / "pred" / f"{im.name}.png", im.pred)
    return root / "pred", root / "gt"


def write_voc(images: Sequence[SemanticImage], root: Path) -> tuple[Path, Path]:
    voc = root / "VOC2012"
    ids = [im.name.replace("sub/", "") for im in images]
    for key, im in zip(ids, images, strict=True):
        write_png(voc / "SegmentationClass" / f"{key}.png", im.gt, "P")
        write_png(root / "pred" / f"{key}.png", im.pred)
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    return root / "pred", voc


def write_ade20k(images: Sequence[SemanticImage], root: Path) -> tuple[Path, Path]:
    ade = root / "ADEChallengeData2016"
    for im in images:
        write_png(ade / "annotations" / "validation" / f"{im.name}.png", im.gt)
        write_png(root / "pred" / f"{im.name}.png", im.pred)
    return root / "pred", ade


# ------------------------------------------------------------------------------ cityscapes data


@dataclass
class CityscapesImage:
    key: str
    labels: np.ndarray
    inst: np.ndarray
    pred: np.ndarray


def cityscapes_images(seed: int) -> list[CityscapesImage]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(N):
        labels, inst, pred = scene(rng, 20, 36, n_things=4)
        out.append(CityscapesImage(f"{('aachen', 'bonn')[i % 2]}_{i:06d}_{i:06d}", labels,
                                   inst, pred))
    return out


def write_cityscapes(images: Sequence[CityscapesImage], root: Path) -> tuple[Path, Path]:
    for im in images:
        folder = root / "gtFine" / "val" / im.key.split("_")[0]
        write_png(folder / f"{im.key}_gtFine_labelIds.png", im.labels)
        write_png(folder / f"{im.key}_gtFine_instanceIds.png", im.inst, "I;16")
        write_png(root / "results" / f"{im.key}_pred.png", im.pred)
    return root / "results", root


@dataclass
class InstanceImage:
    """One Cityscapes instance image: instanceIds and ``(mask, label id, score)`` detections."""

    key: str
    inst: np.ndarray
    dets: list[tuple[np.ndarray, int, float]]


EVAL_THINGS = (24, 25, 26, 27, 28, 31, 32, 33)


def instance_images(seed: int) -> list[InstanceImage]:
    """Ground truth from street scenes (instances and group regions); detections: shifted
    instances, some relabelled or missed, and false positives; scores on a coarse grid, so
    that detections of one category tie across images."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(N):
        _, inst, _ = scene(rng, 20, 36, stuff=STUFF, n_things=5, groups=1)
        dets = []
        for v in np.unique(inst):
            if v < 1000 or v // 1000 not in EVAL_THINGS or rng.random() < 0.15:
                continue
            shift = tuple(rng.integers(-1, 2, 2)) if rng.random() < 0.3 else (0, 0)
            mask = np.roll(inst == v, shift, axis=(0, 1))
            label = int(v // 1000) if rng.random() > 0.2 else int(rng.choice(EVAL_THINGS))
            dets.append((mask, label, float(rng.choice([0.3, 0.5, 0.9]))))
        fp = np.zeros(inst.shape, bool)
        fp[2:6, 3:9] = True
        dets.append((fp, int(rng.choice(EVAL_THINGS)), 0.5))
        out.append(InstanceImage(f"{('aachen', 'bonn')[i % 2]}_{i:06d}_{i:06d}", inst, dets))
    return out


def write_cityscapes_instance(images: Sequence[InstanceImage], root: Path
                              ) -> tuple[Path, Path]:
    for im in images:
        city = im.key.split("_")[0]
        write_png(root / "gtFine" / "val" / city / f"{im.key}_gtFine_instanceIds.png", im.inst,
                  "I;16")
        lines = []
        for n, (mask, label, score) in enumerate(im.dets):
            write_png(root / "results" / city / "masks" / f"{im.key}_{n}.png",
                      mask.astype(np.uint8) * 255)
            lines.append(f"masks/{im.key}_{n}.png {label} {score}\n")
        (root / "results" / city / f"{im.key}_pred.txt").write_text("".join(lines))
    return root / "results", root


# ------------------------------------------------------------------------------ coco data

COCO_CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"},
                   {"id": 8, "name": "bird"}]


@dataclass
class CocoImage:
    image_id: int
    shape: tuple[int, int]
    anns: list[tuple[np.ndarray, int, int]]  # mask, category id, iscrowd
    dets: list[tuple[np.ndarray, int, float]]  # mask, category id, score


def coco_images(seed: int) -> list[CocoImage]:
    rng = np.random.default_rng(seed)
    cats = [c["id"] for c in COCO_CATEGORIES]
    out = []
    for i in range(N):
        h, w = int(rng.integers(12, 20)), int(rng.integers(12, 20))
        anns, dets = [], []
        for k in range(int(rng.integers(2, 5))):
            y, x = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
            m = np.zeros((h, w), bool)
            m[y:y + int(rng.integers(3, 8)), x:x + int(rng.integers(3, 8))] = True
            cat = int(rng.choice(cats))
            anns.append((m, cat, int(k == 0 and rng.random() < 0.3)))
            if rng.random() < 0.8:
                shift = tuple(rng.integers(-1, 2, 2)) if rng.random() < 0.5 else (0, 0)
                shifted = np.roll(m, shift, axis=(0, 1))
                label = cat if rng.random() < 0.8 else int(rng.choice(cats))
                dets.append((shifted, label, float(rng.choice([0.2, 0.6, 0.8]))))
        fp = np.zeros((h, w), bool)
        fp[:3, :4] = True
        dets.append((fp, int(rng.choice(cats)), 0.6))
        out.append(CocoImage(i + 1, (h, w), anns, dets))
    return out


def _rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode()}


def write_coco(images: Sequence[CocoImage], root: Path,
               categories: Sequence[dict[str, Any]] = COCO_CATEGORIES) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    anns, dets = [], []
    for im in images:
        for mask, cat, crowd in im.anns:
            ys, xs = np.nonzero(mask)
            anns.append({"id": len(anns) + 1, "image_id": im.image_id, "category_id": cat,
                         "iscrowd": crowd, "area": float(mask.sum()),
                         "bbox": [float(xs.min()), float(ys.min()),
                                  float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)],
                         "segmentation": _rle(mask)})
        for mask, cat, score in im.dets:
            dets.append({"image_id": im.image_id, "category_id": cat, "score": score,
                         "segmentation": _rle(mask)})
    gt = {"images": [{"id": im.image_id, "height": im.shape[0], "width": im.shape[1],
                      "file_name": f"{im.image_id}.jpg"} for im in images],
          "annotations": anns, "categories": list(categories)}
    (root / "gt.json").write_text(json.dumps(gt))
    (root / "results.json").write_text(json.dumps(dets))
    return root / "results.json", root / "gt.json"


# ------------------------------------------------------------------------------ panoptic data

CITYSCAPES_PANOPTIC_CATEGORIES = [
    {"id": 7, "name": "road", "isthing": 0}, {"id": 23, "name": "sky", "isthing": 0},
    {"id": 24, "name": "person", "isthing": 1}, {"id": 26, "name": "car", "isthing": 1},
]


@dataclass
class PanopticSet:
    """Panoptic images, their ids (``image_id``) and the category table."""

    images: list[PanopticImage]
    ids: list[Any]
    categories: list[dict[str, Any]]

    def __getitem__(self, sl: slice) -> PanopticSet:
        return replace(self, images=self.images[sl], ids=self.ids[sl])

    def __len__(self) -> int:
        return len(self.images)


def panoptic_set(seed: int, categories: list[dict[str, Any]], ids: list[Any]) -> PanopticSet:
    rng = np.random.default_rng(seed)
    return PanopticSet([random_image(rng, categories) for _ in ids], ids, categories)


def write_coco_panoptic(data: PanopticSet, root: Path) -> tuple[Path, Path]:
    return write_set(root, data.images, data.categories, image_ids=data.ids)


def write_cityscapes_panoptic(data: PanopticSet, root: Path) -> tuple[Path, Path]:
    name = "cityscapes_panoptic_val"
    gt_anns, pred_anns, images = [], [], []
    for key, im in zip(data.ids, data.images, strict=True):
        for folder, ids in ((root / "gtFine" / name, im.gt), (root / "results" / name, im.pred)):
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(id2rgb(ids), "RGB").save(folder / f"{key}_panoptic.png")
        images.append({"id": key, "file_name": f"{key}_leftImg8bit.png",
                       "height": int(im.gt.shape[0]), "width": int(im.gt.shape[1])})
        gt_anns.append({"image_id": key, "file_name": f"{key}_panoptic.png",
                        "segments_info": im.gt_segments})
        pred_anns.append({"image_id": key, "file_name": f"{key}_panoptic.png",
                          "segments_info": im.pred_segments})
    (root / "gtFine" / f"{name}.json").write_text(json.dumps(
        {"images": images, "annotations": gt_anns, "categories": data.categories}))
    (root / "results" / f"{name}.json").write_text(json.dumps({"annotations": pred_anns}))
    return root / "results", root


# ------------------------------------------------------------------------------ the cases


@dataclass(frozen=True)
class Case:
    """One format's small dataset: ``make()`` the images (a sliceable sequence), ``write``
    them below a folder (returns ``(pred, gt)``), and the ``options`` of :func:`evaluate`."""

    id: str
    format: str
    task: str | None
    make: Callable[[], Any]
    write: Callable[[Any, Path], tuple[Path, Path]]
    options: dict[str, Any] = field(default_factory=dict)
    rows: bool = True  # the format has per-image rows

    @property
    def adapter(self) -> Any:
        return get_adapter(self.format, self.task)

    def evaluate(self, paths: tuple[Path, Path], **kw: Any) -> Any:
        opts = {**self.options, **({"per_image": True} if self.rows else {}), **kw}
        return segeval.evaluate(paths[0], paths[1], self.format, **opts)

    def plan(self, paths: tuple[Path, Path]) -> Any:
        """The plan, built the way :func:`segeval.evaluate` builds it (no per-image rows)."""
        options = Options(**self.options)
        ref = self.adapter.reference(paths[1], options)
        return self.adapter.plan(Folder(paths[0]), ref, options)


VOC_PRESENT = (0, 1, 5, 7, 12, 15, 20)  # the other voc classes are absent: NaN rows

CASES = {c.id: c for c in [
    Case("voc", "voc", None, functools.partial(semantic_images, 1, 21, VOC_PRESENT), write_voc),
    Case("folder", "folder", None, functools.partial(semantic_images, 2, 4, range(4)),
         write_folder, {"class_names": ("road", "car", "sky", "tree")}),
    Case("cityscapes", "cityscapes", None, functools.partial(cityscapes_images, 3),
         write_cityscapes),
    Case("cityscapes/instance", "cityscapes", "instance",
         functools.partial(instance_images, 4), write_cityscapes_instance,
         {"task": "instance"}, rows=False),
    Case("coco", "coco", None, functools.partial(coco_images, 5), write_coco, rows=False),
    Case("coco-panoptic", "coco-panoptic", None,
         functools.partial(panoptic_set, 6, PANOPTIC_CATEGORIES, list(range(1, N + 1))),
         write_coco_panoptic),
    Case("cityscapes-panoptic", "cityscapes-panoptic", None,
         functools.partial(panoptic_set, 7, CITYSCAPES_PANOPTIC_CATEGORIES,
                           [f"{c}_{i:06d}_{i:06d}" for i, c in
                            enumerate(["aachen", "bonn"] * (N // 2))]),
         write_cityscapes_panoptic),
    # ground truth 0 ("other"), classes 1, 2, 5, 150 and 255; predictions 0 (no class)..150
    Case("ade20k", "ade20k", None, functools.partial(semantic_images, 8, 151, (0, 1, 2, 5, 150)),
         write_ade20k),
    Case("nifti", "nifti", None, functools.partial(medical_cases, 8, N), write_cases,
         rows=False),
]}

ANY_ORDER = [c for c in CASES if c != "coco"]
STATE = [cid for cid, case in CASES.items() if case.adapter.TASK in STATE_TASKS]
BATCHES = ["voc", "folder", "ade20k"]  # plans with load/count (GPU batches): checked below


def test_every_adapter_has_a_case() -> None:
    """Each module of the registry (aliases included) is the adapter of some case."""
    covered = {case.adapter.__name__ for case in CASES.values()}
    assert set(ADAPTERS.values()) == covered
    for case in CASES.values():
        assert (case.task or case.adapter.TASK) == case.adapter.TASK


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    """The images of every case, made once."""
    return {cid: case.make() for cid, case in CASES.items()}


@pytest.fixture(scope="module")
def written(data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, tuple[Path, Path]]:
    """Every case's dataset on disk: ``(pred, gt)``."""
    root = tmp_path_factory.mktemp("common")
    return {cid: case.write(data[cid], root / cid.replace("/", "-"))
            for cid, case in CASES.items()}


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with dask.distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0",
                                       silence_logs=logging.CRITICAL) as cluster:
        yield cluster.scheduler_address


# ------------------------------------------------------------------------------ 1. engines


@pytest.mark.parametrize("cid", CASES)
def test_engines_agree(cid: str, written: dict, scheduler: str) -> None:
    case, paths = CASES[cid], written[cid]
    one = case.evaluate(paths, jobs=1)
    assert one.num_images == N
    for kw in ({"jobs": 2}, {"jobs": 3, "scheduler": "threads"}, {"scheduler": scheduler}):
        other = case.evaluate(paths, **kw)
        assert plain(other.to_dict()) == plain(one.to_dict()), kw
        assert plain(other.per_image) == plain(one.per_image), kw
    if case.rows:  # one row per item, in item order
        items = case.plan(paths).items
        assert [r["image"] for r in one.per_image] == [
            getattr(item, "name", getattr(item, "image_id", None)) for item in items]


@pytest.mark.parametrize("cid", CASES)
def test_batches_are_the_plans_that_count_loaded_items(cid: str, written: dict) -> None:
    plan = CASES[cid].plan(written[cid])
    assert (plan.load is not None and plan.count is not None) == (cid in BATCHES)


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("cid", BATCHES)
def test_gpu_batches_on_the_host_equal_the_local_engine(cid: str, per_image: bool,
                                                        written: dict) -> None:
    case, paths = CASES[cid], written[cid]
    options = Options(**case.options, per_image=per_image)
    ref = case.adapter.reference(paths[1], options)
    plan = case.adapter.plan(Folder(paths[0]), ref, options)
    stats, rows = local.reduce(plan, jobs=1)
    for kw in ({"jobs": 1}, {"jobs": 2, "batch": 2}):
        got, got_rows = cuda.reduce(plan, device="cpu", **kw)
        assert got == stats, kw
        assert plain(got_rows) == plain(rows), kw
        assert plain(plan.finish(got, got_rows).to_dict()) == \
            plain(plan.finish(stats, rows).to_dict())


# ------------------------------------------------------------------------------ 2. merging


def scored(case: Case, paths: tuple[Path, Path]) -> tuple[Any, list[Any]]:
    plan = case.plan(paths)
    return plan, [plan.score(item)[0] for item in plan.items]


def total(zero: Any, stats: Sequence[Any]) -> Any:
    return functools.reduce(operator.add, stats, zero)


def contiguous_splits(n: int, rng: np.random.Generator) -> Iterator[list[slice]]:
    """Every split into 2 shards, and a few random ones into 3 and ``n``."""
    for cut in range(n + 1):
        yield [slice(0, cut), slice(cut, n)]
    for _ in range(3):
        a, b = sorted(rng.integers(0, n + 1, 2))
        yield [slice(0, a), slice(a, b), slice(b, n)]
    yield [slice(i, i + 1) for i in range(n)]


@pytest.mark.parametrize("cid", [c for c in CASES if c != "coco"])
def test_contiguous_shards_add_up(cid: str, written: dict) -> None:
    case = CASES[cid]
    plan, stats = scored(case, written[cid])
    assert len(stats) == N
    want = plain(plan.finish(total(plan.zero, stats), []).to_dict())
    assert want == plain(case.evaluate(written[cid], jobs=1, per_image=False).to_dict())
    rng = np.random.default_rng(0)
    for shards in contiguous_splits(len(stats), rng):
        parts = [total(plan.zero, stats[s]) for s in shards]
        assert plain(plan.finish(total(plan.zero, parts), []).to_dict()) == want, shards
    # a tree of adjacent pairs, as the Dask engine reduces
    level = list(stats)
    while len(level) > 1:
        level = [level[i] + level[i + 1] if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    assert plain(plan.finish(plan.zero + level[0], []).to_dict()) == want


@pytest.mark.parametrize("cid", ANY_ORDER)
def test_any_order_adds_up(cid: str, written: dict) -> None:
    plan, stats = scored(CASES[cid], written[cid])
    want = plain(plan.finish(total(plan.zero, stats), []).to_dict())
    rng = np.random.default_rng(1)
    for _ in range(4):
        order = rng.permutation(len(stats))
        shuffled = total(plan.zero, [stats[i] for i in order])
        assert plain(plan.finish(shuffled, []).to_dict()) == want, order


def test_instance_ties_are_ordered_by_image(written: dict) -> None:
    """Why any merge order works for cityscapes/instance with ``ap="coco"`` (note 3): the same
    parts with the images numbered in merge order instead give another AP on these data."""
    case = dataclasses.replace(CASES["cityscapes/instance"],
                               options={"task": "instance", "ap": "coco"})
    plan, stats = scored(case, written["cityscapes/instance"])
    want = plain(plan.finish(total(plan.zero, stats), []).to_dict())

    def numbered(parts: InstanceParts, image_id: int) -> InstanceParts:
        return InstanceParts([{**x, "id": image_id} for x in parts.images],
                             [{**x, "image_id": image_id} for x in parts.annotations],
                             [{**x, "image_id": image_id} for x in parts.results])

    backwards = [numbered(s, k) for k, s in enumerate(stats[::-1], 1)]
    assert plain(plan.finish(total(plan.zero, backwards), []).to_dict()) != want
    assert plain(plan.finish(total(plan.zero, stats[::-1]), []).to_dict()) == want


def test_coco_plan_is_one_item_and_zero_is_neutral(written: dict) -> None:
    case = CASES["coco"]
    want = plain(case.evaluate(written["coco"], jobs=1).to_dict())
    for merge in (lambda z, s: z + s, lambda z, s: s + z, lambda z, s: z + z + s):
        plan, stats = scored(case, written["coco"])
        assert len(stats) == 1
        assert plain(plan.finish(merge(plan.zero, stats[0]), []).to_dict()) == want


@pytest.mark.parametrize("cid", list(CASES))
def test_finish_leaves_the_statistics_as_they_were(cid: str, written: dict) -> None:
    """Finishing the same statistics twice gives the same result (a leaderboard may finish a
    total more than once, e.g. with and without an image)."""
    plan, stats = scored(CASES[cid], written[cid])
    merged = total(plan.zero, stats)
    first = plain(plan.finish(merged, []).to_dict())
    assert plain(plan.finish(merged, []).to_dict()) == first


# ------------------------------------------------------------------------------ 3. relabelling


def permute_semantic(case: Case, images: list[SemanticImage], sigma: np.ndarray
                     ) -> tuple[list[SemanticImage], dict[str, Any]]:
    """Class ``c`` becomes ``sigma[c]`` in ground truth and prediction (and keeps its name)."""
    lut = np.arange(256, dtype=np.uint8)
    lut[: len(sigma)] = sigma
    names = case.options.get("class_names", VOC_CLASSES)
    renamed = [""] * len(names)
    for c, name in enumerate(names):
        renamed[sigma[c]] = name
    moved = [SemanticImage(im.name, lut[im.gt], lut[im.pred]) for im in images]
    return moved, {**case.options, "class_names": tuple(renamed)}


def check_semantic(a: Any, b: Any, sigma: np.ndarray) -> None:
    da, db = a.to_dict(), b.to_dict()
    for c, row in enumerate(da["per_class"]):
        assert plain({**db["per_class"][sigma[c]], "id": c}) == plain(row)
    cm_a, cm_b = np.array(da["confusion_matrix"]), np.array(db["confusion_matrix"])
    assert np.array_equal(cm_b[np.ix_(sigma, sigma)], cm_a)
    assert np.array_equal(np.array(db["unassigned"])[sigma], da["unassigned"])
    assert_close(da["metrics"], db["metrics"])
    assert_close(a.per_image, b.per_image)


def permute_panoptic(case: Case, data: PanopticSet, sigma: np.ndarray
                     ) -> tuple[PanopticSet, dict[str, Any]]:
    """Category ``ids[k]`` becomes ``ids[sigma[k]]`` in both JSONs, and the table is listed by
    the new ids, so that its rows move."""
    ids = [c["id"] for c in data.categories]
    new = {ids[k]: ids[sigma[k]] for k in range(len(ids))}

    def seg(segments: list[dict]) -> list[dict]:
        return [{**s, "category_id": new[s["category_id"]]} for s in segments]

    images = [PanopticImage(im.gt, im.pred, seg(im.gt_segments), seg(im.pred_segments))
              for im in data.images]
    cats = sorted(({**c, "id": new[c["id"]]} for c in data.categories), key=lambda c: c["id"])
    return replace(data, images=images, categories=cats), case.options


def check_by_name(a: Any, b: Any, sigma: np.ndarray) -> None:
    """Per-class rows equal by name (ids aside), in the new order; means equal up to
    rounding."""
    da, db = a.to_dict(), b.to_dict()
    rows_b = {r["name"]: r for r in db["per_class"]}
    assert len(rows_b) == len(da["per_class"])
    for row in da["per_class"]:
        assert plain({**rows_b[row["name"]], "id": row["id"]}) == plain(row)
    assert [r["id"] for r in db["per_class"]] == sorted(r["id"] for r in db["per_class"])
    assert [r["name"] for r in db["per_class"]] != [r["name"] for r in da["per_class"]]
    rest = {k: v for k, v in da.items() if k != "per_class"}
    assert_close(rest, {k: v for k, v in db.items() if k != "per_class"})
    if a.per_image is not None:
        assert_close(a.per_image, b.per_image)


def permute_coco(case: Case, images: list[CocoImage], sigma: np.ndarray
                 ) -> tuple[tuple[list[CocoImage], list[dict]], dict[str, Any]]:
    ids = [c["id"] for c in COCO_CATEGORIES]
    new = {ids[k]: ids[sigma[k]] for k in range(len(ids))}
    moved = [replace(im, anns=[(m, new[c], z) for m, c, z in im.anns],
                     dets=[(m, new[c], s) for m, c, s in im.dets]) for im in images]
    cats = sorted(({**c, "id": new[c["id"]]} for c in COCO_CATEGORIES), key=lambda c: c["id"])
    return (moved, cats), case.options


PERMUTE: dict[str, tuple[Callable[..., Any], Callable[..., None], Callable[..., Any]]] = {
    "voc": (permute_semantic, check_semantic, write_voc),
    "folder": (permute_semantic, check_semantic, write_folder),
    "coco": (permute_coco, check_by_name, lambda d, root: write_coco(d[0], root, d[1])),
    "coco-panoptic": (permute_panoptic, check_by_name, write_coco_panoptic),
    "cityscapes-panoptic": (permute_panoptic, check_by_name, write_cityscapes_panoptic),
}


@pytest.mark.parametrize("cid", PERMUTE)
def test_relabelled_classes_permute_the_rows(cid: str, data: dict, written: dict,
                                             tmp_path: Path) -> None:
    case = CASES[cid]
    permute, check, write = PERMUTE[cid]
    k = {"voc": len(VOC_CLASSES), "folder": len(case.options.get("class_names", ())),
         "coco": len(COCO_CATEGORIES)}.get(cid) or len(data[cid].categories)
    sigma = np.random.default_rng(2).permutation(k)
    assert (sigma != np.arange(k)).any()
    moved, options = permute(case, data[cid], sigma)
    paths = write(moved, tmp_path)
    before = case.evaluate(written[cid], jobs=1)
    after = replace(case, options=options).evaluate(paths, jobs=1)
    check(before, after, sigma)


# ------------------------------------------------------------------------------ 4. ignore


def scramble_semantic(images: list[SemanticImage], rng: np.random.Generator
                      ) -> list[SemanticImage]:
    """Any byte at all where the ground truth is the ignore index 255."""
    out = []
    for im in images:
        pred = im.pred.copy()
        at = im.gt == 255
        pred[at] = rng.integers(0, 256, int(at.sum()))
        out.append(SemanticImage(im.name, im.gt, pred))
    return out


IGNORED_IDS = np.array([lb.id for lb in BY_ID if lb.ignore_in_eval and lb.id >= 0])


def scramble_cityscapes(images: list[CityscapesImage], rng: np.random.Generator
                        ) -> list[CityscapesImage]:
    """Any label id 0..33 where the ground truth's label id is ignored in evaluation."""
    out = []
    for im in images:
        pred = im.pred.copy()
        at = np.isin(im.labels, IGNORED_IDS)
        pred[at] = rng.integers(0, 34, int(at.sum()))
        out.append(replace(im, pred=pred))
    return out


def scramble_ade20k(images: list[SemanticImage], rng: np.random.Generator
                    ) -> list[SemanticImage]:
    """Any prediction value 0..150 where the ground truth is 0 ("other") or 255."""
    out = []
    for im in images:
        pred = im.pred.copy()
        at = (im.gt == 0) | (im.gt == 255)
        pred[at] = rng.integers(0, 151, int(at.sum()))
        out.append(SemanticImage(im.name, im.gt, pred))
    return out


SCRAMBLE = {"voc": scramble_semantic, "folder": scramble_semantic,
            "cityscapes": scramble_cityscapes, "ade20k": scramble_ade20k}


@pytest.mark.parametrize("cid", SCRAMBLE)
def test_predictions_on_ignored_pixels_never_count(cid: str, data: dict, written: dict,
                                                   tmp_path: Path) -> None:
    case = CASES[cid]
    rng = np.random.default_rng(3)
    images = SCRAMBLE[cid](data[cid], rng)
    changed = sum(int((a.pred != b.pred).sum()) for a, b in zip(images, data[cid], strict=True))
    assert changed > 20
    before = case.evaluate(written[cid], jobs=1).to_dict()
    after = case.evaluate(case.write(images, tmp_path), jobs=1)
    got = after.to_dict()
    if cid == "cityscapes":  # the raw label-id matrix counts every pixel: only ignored rows move
        raw_a = np.array(before.pop("label_confusion_matrix"))
        raw_b = np.array(got.pop("label_confusion_matrix"))
        evaluated = np.setdiff1d(np.arange(34), IGNORED_IDS)
        assert np.array_equal(raw_a[evaluated], raw_b[evaluated])
        assert not np.array_equal(raw_a, raw_b)
    assert plain(got) == plain(before)
    assert plain(after.per_image) == plain(case.evaluate(written[cid], jobs=1).per_image)


# ------------------------------------------------------------------------------ 5. states


@pytest.mark.parametrize("cid", STATE)
def test_state_round_trips_and_shards_merge(cid: str, data: dict, written: dict,
                                            tmp_path: Path) -> None:
    case = CASES[cid]
    whole = case.evaluate(written[cid], jobs=1)
    want = plain(whole.to_dict())
    (tmp_path / "whole.npz").write_bytes(state_bytes(whole))
    again = merge_states([tmp_path / "whole.npz"])
    assert plain(again.to_dict()) == want
    assert again.per_image is None  # rows are not part of a state
    paths = []
    for k, sl in enumerate((slice(0, 2), slice(2, N))):
        shard = case.evaluate(case.write(data[cid][sl], tmp_path / f"shard{k}"), jobs=1)
        assert shard.num_images == len(data[cid][sl])
        paths.append(tmp_path / f"shard{k}.npz")
        paths[-1].write_bytes(state_bytes(shard))
    assert plain(merge_states(paths).to_dict()) == want
    assert plain(merge_states(paths[::-1]).to_dict()) == want
