"""Write a tiny synthetic Pascal-VOC-style dataset next to this script, in ``voc/``.

    python examples/make_voc_example.py

Layout (the one ``segeval score --format voc`` reads)::

    voc/VOC2012/SegmentationClass/<id>.png        ground truth, palette PNG
    voc/VOC2012/ImageSets/Segmentation/val.txt     the image ids
    voc/predictions/<id>.png                       a model's output, palette PNG

Ground truth holds VOC class indices 0..20 (0 = background) and 255 = void: a band about 4 px
wide along every boundary between two labels, as in the real annotations, plus one small
"difficult" object that is void as a whole. The colours are the standard VOC colormap (only for
viewing; segeval reads the indices).

The predictions are those of a plausible but imperfect model: boundaries shifted, shrunk or
grown by a few pixels, one object given a similar wrong class, one object half right and half
confused, one small object missed, one false-positive blob. They never contain 255.

Everything is drawn from fixed scene descriptions and a seeded random generator with numpy
and Pillow only, so running the script again rewrites the same files byte for byte (with the
same Pillow and zlib versions).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SEED = 20120
OUT = Path(__file__).resolve().parent / "voc"
VOID = 255

CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
C = {name: i for i, name in enumerate(CLASSES)}


def voc_palette() -> list[int]:
    """The standard 256-entry VOC colormap, flattened ``[r0, g0, b0, r1, ...]``."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


@dataclass
class Obj:
    """One object: a class, a shape and what the model does with it.

    ``kind`` is ``"ellipse"`` or ``"rect"`` (``box`` = x0, y0, x1, y1) or ``"poly"``
    (``points``). ``pred_class`` replaces the class in the prediction; ``split_class`` paints
    the lower half of the predicted object with another class; ``missed`` leaves it out of the
    prediction; ``difficult`` makes it void in the ground truth. ``grow`` (pixels, negative to
    shrink) and ``shift`` move the predicted boundary.
    """

    cls: str
    kind: str
    box: tuple[int, int, int, int] | None = None
    points: list[tuple[int, int]] = field(default_factory=list)
    pred_class: str | None = None
    split_class: str | None = None
    missed: bool = False
    difficult: bool = False
    grow: int = 0
    shift: tuple[int, int] = (0, 0)


@dataclass
class Scene:
    image_id: str
    size: tuple[int, int]  # width, height
    objects: list[Obj]
    false_positive: tuple[str, tuple[int, int, int, int]] | None = None


def blob(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float,
         n: int = 14) -> list[tuple[int, int]]:
    """An irregular polygon around ``(cx, cy)``: radii jittered by up to 20 %."""
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    jitter = rng.uniform(0.8, 1.2, n)
    return [(round(cx + rx * j * np.cos(a)), round(cy + ry * j * np.sin(a)))
            for a, j in zip(angles, jitter, strict=True)]


def scenes(rng: np.random.Generator) -> list[Scene]:
    """Six scenes of VOC-like sizes, 2-4 objects each."""
    return [
        Scene("synth_000001", (500, 375), [
            Obj("person", "poly", points=blob(rng, 170, 210, 60, 140), grow=-3, shift=(4, 2)),
            Obj("dog", "ellipse", (290, 250, 440, 350), pred_class="cat", shift=(-5, 3)),
            Obj("bottle", "rect", (60, 290, 85, 350), missed=True),
        ]),
        Scene("synth_000002", (375, 500), [
            Obj("horse", "poly", points=blob(rng, 190, 260, 140, 110), grow=4, shift=(-3, 0)),
            Obj("person", "ellipse", (150, 60, 240, 230), split_class="horse", shift=(2, 4)),
        ], false_positive=("cow", (20, 420, 90, 470))),
        Scene("synth_000003", (500, 353), [
            Obj("car", "rect", (40, 170, 230, 300), grow=-2, shift=(6, -3)),
            Obj("bus", "poly", points=[(250, 80), (480, 90), (470, 300), (240, 290)],
                shift=(-4, 4)),
            Obj("person", "ellipse", (215, 200, 250, 320), grow=-4),
            Obj("bicycle", "ellipse", (10, 300, 40, 340), difficult=True),
        ]),
        Scene("synth_000004", (353, 500), [
            Obj("pottedplant", "poly", points=blob(rng, 110, 360, 70, 90), grow=3),
            Obj("tvmonitor", "rect", (180, 80, 330, 200), shift=(3, 3)),
            Obj("chair", "poly", points=[(200, 300), (320, 300), (330, 480), (190, 480)],
                pred_class="sofa", grow=-2),
        ]),
        Scene("synth_000005", (500, 333), [
            Obj("aeroplane", "poly", points=[(40, 160), (260, 120), (460, 150), (300, 190),
                                              (250, 260), (210, 195), (60, 200)],
                grow=-3, shift=(5, 0)),
            Obj("bird", "ellipse", (380, 40, 430, 75), missed=True),
            Obj("bird", "ellipse", (60, 40, 130, 90), shift=(-3, 2)),
        ], false_positive=("aeroplane", (400, 250, 470, 300))),
        Scene("synth_000006", (486, 500), [
            Obj("sheep", "poly", points=blob(rng, 150, 330, 100, 70), grow=2, shift=(2, -2)),
            Obj("sheep", "poly", points=blob(rng, 350, 360, 90, 60), grow=-2),
            Obj("cow", "ellipse", (180, 120, 400, 260), split_class="horse", shift=(-4, 0)),
            Obj("boat", "rect", (20, 20, 120, 70), grow=-3),
        ]),
    ]


def draw_mask(obj: Obj, size: tuple[int, int], shift: tuple[int, int] = (0, 0),
              grow: int = 0) -> np.ndarray:
    """Boolean ``H x W`` mask of one object, optionally shifted and grown/shrunk."""
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    dx, dy = shift
    if obj.kind == "poly":
        draw.polygon([(x + dx, y + dy) for x, y in obj.points], fill=1)
    else:
        assert obj.box is not None
        x0, y0, x1, y1 = obj.box
        box = (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
        (draw.ellipse if obj.kind == "ellipse" else draw.rectangle)(box, fill=1)
    if grow:
        filt = ImageFilter.MaxFilter if grow > 0 else ImageFilter.MinFilter
        img = img.filter(filt(2 * abs(grow) + 1))
    return np.asarray(img, dtype=bool)


def ground_truth(scene: Scene) -> np.ndarray:
    """Class indices with a void band along every boundary; difficult objects are void."""
    w, h = scene.size
    gt = np.zeros((h, w), np.uint8)
    difficult = np.zeros((h, w), bool)
    for obj in scene.objects:
        mask = draw_mask(obj, scene.size)
        gt[mask] = C[obj.cls]
        difficult[mask] = obj.difficult  # a later object covers an earlier one
    img = Image.fromarray(gt)
    band = (np.asarray(img.filter(ImageFilter.MaxFilter(5)))
            != np.asarray(img.filter(ImageFilter.MinFilter(5))))
    gt[band | difficult] = VOID
    return gt


def prediction(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """What an imperfect model might output for the scene (never void)."""
    w, h = scene.size
    pred = np.zeros((h, w), np.uint8)
    for obj in scene.objects:
        if obj.missed:
            continue
        # a pixel or two of extra random offset, on top of the scene's systematic error
        sx, sy = (int(v) for v in rng.integers(-2, 3, 2))
        mask = draw_mask(obj, scene.size, (obj.shift[0] + sx, obj.shift[1] + sy), obj.grow)
        pred[mask] = C[obj.pred_class or obj.cls]
        if obj.split_class:
            rows = np.flatnonzero(mask.any(axis=1))
            lower = np.zeros_like(mask)
            lower[(rows[0] + rows[-1]) // 2:] = True
            pred[mask & lower] = C[obj.split_class]
    if scene.false_positive:
        cls, (x0, y0, x1, y1) = scene.false_positive
        points = blob(rng, (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2)
        pred[draw_mask(Obj(cls, "poly", points=points), scene.size)] = C[cls]
    return pred


def save_png(labels: np.ndarray, path: Path, palette: list[int]) -> None:
    img = Image.fromarray(labels)  # mode "L"
    img.putpalette(palette)  # now mode "P", like the VOC files
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)


def main() -> None:
    rng = np.random.default_rng(SEED)
    palette = voc_palette()
    if OUT.exists():
        shutil.rmtree(OUT)
    root = OUT / "VOC2012"
    ids = []
    for scene in scenes(rng):
        ids.append(scene.image_id)
        save_png(ground_truth(scene), root / "SegmentationClass" / f"{scene.image_id}.png",
                 palette)
        save_png(prediction(scene, rng), OUT / "predictions" / f"{scene.image_id}.png", palette)
    split = root / "ImageSets" / "Segmentation" / "val.txt"
    split.parent.mkdir(parents=True, exist_ok=True)
    split.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(ids)} images to {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
