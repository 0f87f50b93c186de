"""The bundled example: the README's first command scores it, and the numbers are right."""

from __future__ import annotations

import numpy as np
from PIL import Image
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from segeval import evaluate
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "voc"


def test_example_dataset_scores_like_sklearn() -> None:
    ids = (EXAMPLE / "VOC2012/ImageSets/Segmentation/val.txt").read_text().split()
    expected = np.zeros((21, 21), np.int64)
    for image_id in ids:
        gt = np.array(Image.open(EXAMPLE / "VOC2012/SegmentationClass" / f"{image_id}.png"))
        pred = np.array(Image.open(EXAMPLE / "predictions" / f"{image_id}.png"))
        keep = gt != 255
        expected += sk_confusion_matrix(gt[keep], pred[keep], labels=list(range(21)))
    res = evaluate(EXAMPLE / "predictions", EXAMPLE / "VOC2012", "voc")
    assert res.num_images == len(ids) == 6
    np.testing.assert_array_equal(res.confusion.matrix, expected)
    assert 0.4 < res.miou < 0.85
