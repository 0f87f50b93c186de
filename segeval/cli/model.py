"""``segeval model ...``: make synthetic data, train the reference U-Net, predict label PNGs.

Only click is imported here; NumPy and the model are imported inside the commands, so that
``segeval --help`` stays fast. Errors are one line on stderr with exit code 1 (data) or 2
(usage), as for ``segeval score``.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import click

from segeval.cli.common import fail
from segeval.model import DEFAULT_EPOCHS


def _limit_threads(threads: int | None) -> None:
    """Cap the BLAS threads (matrix products): environment variables take effect if NumPy is
    not imported yet, threadpoolctl (when installed) otherwise."""
    if threads is None:
        return
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - optional
            return
        threadpool_limits(threads, user_api="blas")


THREADS = click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
                       help="BLAS threads for the matrix products.")


@click.group("model")
def model() -> None:
    """The reference NumPy U-Net: make-data, train, predict (then `segeval score`).

    \b
    segeval model make-data data/
    segeval model train --data data/ --out unet.npz
    segeval model predict --model unet.npz --images data/val/images --out preds/
    segeval score --format voc --pred preds/ --gt data/val/labels
    """


@model.command("make-data")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--train", "n_train", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Training images.")
@click.option("--val", "n_val", type=click.IntRange(min=1), default=200, show_default=True,
              help="Validation images.")
@click.option("--size", type=click.IntRange(min=8), default=64, show_default=True,
              help="Image height and width in pixels.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def make_data(directory: Path, n_train: int, n_val: int, size: int, seed: int,
              quiet: bool) -> None:
    """Write a synthetic segmentation set: DIRECTORY/{train,val}/{images,labels}/*.png."""
    from tqdm import tqdm

    from segeval.errors import SegevalError
    from segeval.model.data import make_dataset

    with tqdm(total=n_train + n_val, file=sys.stderr, unit="img", desc="make-data",
              disable=True if quiet else None, dynamic_ncols=True) as bar:
        try:
            make_dataset(directory, train=n_train, val=n_val, size=size, seed=seed,
                         progress=bar.update)
        except SegevalError as e:
            bar.close()
            fail(e, e.exit_code)
        except OSError as e:
            bar.close()
            fail(f"{e.filename or directory}: cannot write ({e.strerror or e})", 1)
    if not quiet:
        click.echo(f"wrote {n_train} training and {n_val} validation images to {directory}")


@model.command("train")
@click.option("--data", "data_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Data folder: DATA/{train,val}/{images,labels}, or a Pascal VOC root.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Model file to write (.npz).")
@click.option("--epochs", type=click.IntRange(min=1), default=DEFAULT_EPOCHS, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of initialisation, shuffling and flips.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-3,
              show_default=True, help="Adam learning rate (cosine-decayed).")
@click.option("--width", type=click.IntRange(min=1), default=16, show_default=True,
              help="Channels at full resolution (doubled per level).")
@click.option("--levels", type=click.IntRange(min=2), default=3, show_default=True,
              help="Resolution levels (levels - 1 poolings).")
@click.option("--no-skips", is_flag=True, help="FCN variant: no skip connections.")
@click.option("--up", type=click.Choice(["transpose", "unpool"]), default="transpose",
              show_default=True, help="Decoder up-sampling.")
@click.option("--size", type=click.IntRange(min=8), default=None,
              help="Resize every image to SIZE x SIZE (when sizes differ).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many seconds (the current epoch is still validated).")
@THREADS
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train_cmd(data_dir: Path, out: Path, epochs: int, seed: int, batch_size: int, lr: float,
              width: int, levels: int, no_skips: bool, up: str, size: int | None,
              time_limit: float | None, threads: int, quiet: bool) -> None:
    """Train the U-Net on DATA's train split; report validation mIoU (by segeval) per epoch."""
    _limit_threads(threads)
    if not out.parent.is_dir():
        fail(f"{out}: the folder {out.parent} does not exist", 2)
    from tqdm import tqdm

    from segeval.errors import SegevalError, UsageError
    from segeval.model import data as D
    from segeval.model.train import train
    from segeval.model.unet import UNet, save

    try:
        tr = D.load_split(data_dir, "train", size)
        va = D.load_split(data_dir, "val", size) if D.has_split(data_dir, "val") else None
        names = D.read_class_names(data_dir, tr.labels)
        m = 1 << (levels - 1)
        if tr.images.shape[1] % m or tr.images.shape[2] % m:
            raise UsageError(f"{data_dir}: images are {tr.images.shape[2]}x"
                             f"{tr.images.shape[1]}, not multiples of {m} (use --size or fewer "
                             f"--levels)")
        model = UNet(len(names), levels=levels, width=width, skips=not no_skips, up=up,
                     seed=seed)
        steps = epochs * len(tr)
        with tqdm(total=steps, file=sys.stderr, unit="img", desc="train",
                  disable=True if quiet else None, dynamic_ncols=True) as bar:
            last_miou: list[float] = []

            def on_step(n: int, loss: float) -> None:
                bar.update(n)
                shown = f"loss {loss:.3f}"
                if last_miou:
                    shown += f"  val mIoU {last_miou[-1]:.3f}"
                bar.set_postfix_str(shown, refresh=False)

            def on_epoch(s: Any) -> None:
                last_miou.append(s.val_miou)
                if not quiet:
                        bar.write(f"epoch {s.epoch}/{epochs}  loss {s.loss:.4f}  val mIoU "
                              f"{s.val_miou:.4f}  val PA {s.val_pixel_accuracy:.4f}  "
                              f"{s.seconds:.0f} s", file=sys.stderr)

            history = train(model, tr.images, tr.labels, class_names=names,
                            val_images=None if va is None else va.images,
                            val_labels=None if va is None else va.labels, epochs=epochs,
                            batch_size=batch_size, lr=lr, seed=seed, time_limit=time_limit,
                            on_step=on_step, on_epoch=on_epoch)
        last = history.epochs[-1]
        save(model, out, class_names=names,
             info={"data": str(data_dir), "epochs": len(history.epochs),
                   "val_miou": None if math.isnan(last.val_miou) else last.val_miou,
                   "history": history.to_dict()})
    except SegevalError as e:
        fail(e, e.exit_code)
    except OSError as e:
        fail(f"{e.filename or out}: cannot write ({e.strerror or e})", 1)
    if not quiet:
        click.echo(f"saved {out}: val mIoU {last.val_miou:.4f} after {len(history.epochs)} "
                   f"epochs, {last.seconds:.0f} s")


@model.command("predict")
@click.option("--model", "model_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Model file (.npz).")
@click.option("--images", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of images (.png, .jpg, .jpeg, .bmp; sub-folders kept).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the predicted label PNGs (VOC palette, one per image).")
@THREADS
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def predict_cmd(model_path: Path, images: Path, out: Path, threads: int, quiet: bool) -> None:
    """Write OUT/<stem>.png class-index PNGs that `segeval score` reads."""
    _limit_threads(threads)
    from tqdm import tqdm

    from segeval.errors import MissingFileError, SegevalError
    from segeval.model.data import image_files, write_predictions
    from segeval.model.unet import load

    try:

        model, _ = load(model_path)
        files = image_files(images)
        if not files:
            raise MissingFileError(f"{images}: no image files (.png, .jpg, .jpeg, .bmp)")
        with tqdm(total=len(files), file=sys.stderr, unit="img", desc="predict",
                  disable=True if quiet else None, dynamic_ncols=True) as bar:
            write_predictions(model, files, out, progress=bar.update)
    except SegevalError as e:
        fail(e, e.exit_code)
    except OSError as e:
        fail(f"{e.filename or out}: cannot write ({e.strerror or e})", 1)
    if not quiet:
        click.echo(f"wrote {len(files)} predictions to {out}")
