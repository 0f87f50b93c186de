"""Training the reference U-Net, measured by segeval itself.

One run: read the ``train`` and ``val`` splits (:mod:`segeval.model.data`), then for each epoch
shuffle the training images, and for each mini-batch flip a random half of it left-right,
compute softmax cross-entropy (void pixels ignored), back-propagate and take an Adam step. After
every epoch the model predicts the validation images and a :class:`segeval.ConfusionMatrix`
(the same statistic ``segeval score`` uses) gives the validation mIoU.

The run is a pure function of its arguments and ``seed`` (initialisation, shuffling, flips), on
a given machine and BLAS thread count. Library code never prints: ``on_step`` and ``on_epoch``
callbacks report progress to the caller (the CLI draws a bar with them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from segeval.model import layers as L
from segeval.model.unet import Adam, UNet, normalise, predict

log = logging.getLogger("segeval")


@dataclass
class EpochStats:
    """One epoch: mean training loss (nats per valid pixel), validation mIoU (fraction, NaN
    when there is no validation split) and pixel accuracy, seconds since the start."""

    epoch: int
    loss: float
    val_miou: float
    val_pixel_accuracy: float
    seconds: float


@dataclass
class History:
    epochs: list[EpochStats] = field(default_factory=list)

    def to_dict(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.epochs]


def evaluate_model(model: UNet, images: np.ndarray, labels: np.ndarray,
                   class_names: Sequence[str], ignore_index: int | None = 255,
                   batch_size: int = 32) -> Any:
    """Predict ``images`` and score them against ``labels`` with segeval's ConfusionMatrix;
    returns the :class:`~segeval.ConfusionMatrix`."""
    from segeval.core.confusion import ConfusionMatrix

    cm = ConfusionMatrix(len(class_names), ignore_index, class_names)
    for i in range(0, len(images), batch_size):
        pred = predict(model, images[i:i + batch_size], batch_size)
        cm.update(pred, labels[i:i + batch_size])
    return cm


def train(
    model: UNet,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    *,
    class_names: Sequence[str],
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    ignore_index: int | None = 255,
    time_limit: float | None = None,
    on_step: Callable[[int, float], Any] | None = None,
    on_epoch: Callable[[EpochStats], Any] | None = None,
) -> History:
    """Train ``model`` in place; returns the per-epoch :class:`History`.

    ``train_images`` ``(N, H, W, 3)`` uint8 with ``train_labels`` ``(N, H, W)`` (class indices
    or ``ignore_index``); ``H`` and ``W`` multiples of ``model.multiple``. The learning rate
    ``lr`` follows a cosine schedule down to 5 % over all steps. ``time_limit`` (seconds) ends
    training after the step that passes it, and still runs the validation of that epoch.
    ``on_step(batch_images, loss)`` after each step, ``on_epoch(stats)`` after each epoch.
    """
    n = len(train_images)
    if n == 0:
        raise ValueError("The 'train_images' parameter holds no image.")
    rng = np.random.default_rng([seed, 1])
    opt = Adam(model.params(), lr=lr)
    steps_per_epoch = -(-n // batch_size)
    total = steps_per_epoch * epochs
    history = History()
    start = time.perf_counter()
    step = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        losses, weights = [], []
        stop = False
        for b in range(0, n, batch_size):
            idx = order[b:b + batch_size]
            x = normalise(train_images[idx])
            t = train_labels[idx]
            flip = rng.random(len(idx)) < 0.5
            x[flip] = x[flip, :, :, ::-1]
            t = np.where(flip[:, None, None], t[:, :, ::-1], t)
            opt.lr = lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / total)))
            logits = model.forward(x, training=True)
            loss, dlogits = L.softmax_cross_entropy(logits, t, ignore_index, grad=True)
            model.backward(dlogits)
            opt.step(model.grads())
            step += 1
            losses.append(loss)
            weights.append(len(idx))
            if on_step is not None:
                on_step(len(idx), loss)
            if time_limit is not None and time.perf_counter() - start > time_limit:
                stop = True
                break
        miou = acc = float("nan")
        if val_images is not None and val_labels is not None and len(val_images):
            cm = evaluate_model(model, val_images, val_labels, class_names, ignore_index)
            miou, acc = float(cm.miou()), float(cm.pixel_accuracy())
        stats = EpochStats(epoch, float(np.average(losses, weights=weights)), miou, acc,
                           time.perf_counter() - start)
        history.epochs.append(stats)
        log.info("epoch %d: loss %.4f, val mIoU %.4f", epoch, stats.loss, miou)
        if on_epoch is not None:
            on_epoch(stats)
        if stop:
            break
    return history
