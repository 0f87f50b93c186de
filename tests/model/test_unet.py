"""The U-Net end to end: whole-network gradients, Adam, files, determinism, and that it learns
(measured with segeval's own ConfusionMatrix against chance baselines)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from segeval import ConfusionMatrix
from segeval.errors import FileFormatError, MissingFileError
from segeval.model import layers as L
from segeval.model import unet as U
from segeval.model.data import make_sample
from segeval.model.train import train
from tests.model.test_layers import numeric_grad


def to_float64(model: U.UNet) -> U.UNet:
    for _, layer in model.named_layers():
        for k in layer.p:
            layer.p[k] = layer.p[k].astype(np.float64)
        if isinstance(layer, U.BatchNorm):
            layer.running_mean = layer.running_mean.astype(np.float64)
            layer.running_var = layer.running_var.astype(np.float64)
    return model


VARIANTS = [(True, "transpose"), (False, "transpose"), (True, "unpool"), (False, "unpool")]


@pytest.mark.parametrize(("skips", "up"), VARIANTS)
def test_whole_network_gradient_by_finite_differences(skips, up) -> None:
    rng = np.random.default_rng(0)
    model = to_float64(U.UNet(3, levels=3, width=2, skips=skips, up=up, seed=1))
    x = rng.normal(size=(2, 3, 8, 8))
    target = rng.integers(0, 3, size=(2, 8, 8))
    target[0, :2] = 255

    def loss() -> float:
        return L.softmax_cross_entropy(model.forward(x, training=True), target, 255)

    _, dlogits = L.softmax_cross_entropy(model.forward(x, training=True), target, 255, grad=True)
    model.backward(dlogits)
    grads = model.grads()
    params = model.params()
    assert set(grads) == set(params)
    # every parameter array: a few coordinates each (the whole net is 2k+ numbers)
    for name, p in params.items():
        flat, g = p.reshape(-1), grads[name].reshape(-1)
        for i in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            sub = flat[i:i + 1]
            num = numeric_grad(loss, sub, h=1e-5)[0]
            assert g[i] == pytest.approx(num, abs=1e-6 + 1e-4 * abs(num)), name


def test_fcn_and_unet_differ_in_decoder_width() -> None:
    unet, fcn = U.UNet(4, width=4), U.UNet(4, width=4, skips=False)
    assert unet.params()["dec0.0.weight"].shape[1] == 2 * fcn.params()["dec0.0.weight"].shape[1]
    out = fcn.forward(np.zeros((1, 3, 16, 16), np.float32))
    assert out.shape == (1, 4, 16, 16) and out.dtype == np.float32
    with pytest.raises(ValueError, match="multiple of 4"):
        unet.forward(np.zeros((1, 3, 10, 16), np.float32))


def test_adam_matches_the_textbook_update() -> None:
    p = {"w": np.array([1.0, -2.0, 0.5])}
    opt = U.Adam(p, lr=0.1)
    m = v = np.zeros(3)
    w = np.array([1.0, -2.0, 0.5])
    for t in range(1, 4):
        g = np.array([0.3, -1.0, 2.0]) * t
        opt.step({"w": g})
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        np.testing.assert_allclose(p["w"], w, rtol=1e-6)


def dataset(n: int, size: int, seed: int, classes=None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pairs = [make_sample(rng, size, classes) for _ in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


NAMES = ("background", "disc", "box", "triangle", "ring")


def test_training_lowers_the_loss_and_beats_chance() -> None:
    """Two seconds of training on 48 small images with discs and boxes: the loss falls well
    below its start and the validation mIoU (segeval's ConfusionMatrix) beats two chance
    predictors by a wide margin. (So short a run finds the striped boxes; the flat discs, which
    differ from the background only by colour and outline, take the longer runs of the
    benchmark.)"""
    xi, yi = dataset(48, 32, seed=1, classes=(1, 2))
    vi, vl = dataset(16, 32, seed=2, classes=(1, 2))
    model = U.UNet(5, levels=2, width=8, seed=0)
    losses: list[float] = []
    hist = train(model, xi, yi, class_names=NAMES, val_images=vi, val_labels=vl, epochs=20,
                 batch_size=8, lr=1e-2, seed=0, on_step=lambda n, loss: losses.append(loss))
    assert np.mean(losses[-3:]) < 0.3 * np.mean(losses[:3])
    assert hist.epochs[-1].loss < 0.3 * hist.epochs[0].loss
    pred = U.predict(model, vi)
    cm = ConfusionMatrix(5, 255).update(pred, vl)
    assert float(cm.miou()) == pytest.approx(hist.epochs[-1].val_miou, abs=1e-15)
    # chance 1: everything background; chance 2: random classes with the training frequencies
    valid = yi[yi != 255]
    freq = np.bincount(valid, minlength=5) / valid.size
    rng = np.random.default_rng(3)
    baselines = [ConfusionMatrix(5, 255).update(np.zeros_like(vl), vl).miou(),
                 ConfusionMatrix(5, 255).update(rng.choice(5, size=vl.shape, p=freq), vl).miou()]
    assert float(cm.miou()) > max(baselines) + 0.2, (float(cm.miou()), baselines)
    assert cm.iou()[0] > 0.9 and cm.iou()[2] > 0.5, cm.iou()


def test_training_is_deterministic() -> None:
    xi, yi = dataset(8, 16, seed=4)
    states = []
    for _ in range(2):
        model = U.UNet(5, levels=2, width=4, seed=7)
        train(model, xi, yi, class_names=NAMES, epochs=2, batch_size=4, seed=5)
        states.append(model.state())
    assert all(np.array_equal(states[0][k], states[1][k]) for k in states[0])
    other = U.UNet(5, levels=2, width=4, seed=7)
    train(other, xi, yi, class_names=NAMES, epochs=2, batch_size=4, seed=6)
    assert not np.array_equal(other.params()["head.weight"], states[0]["head.weight"])


def test_save_and_load_round_trip_without_pickle(tmp_path: Path) -> None:
    model = U.UNet(5, levels=2, width=4, up="unpool", skips=False, seed=3)
    xi, yi = dataset(4, 16, seed=8)
    train(model, xi, yi, class_names=NAMES, epochs=1, batch_size=4)
    path = tmp_path / "m.npz"
    U.save(model, path, class_names=NAMES, info={"note": "test"})
    loaded, header = U.load(path)
    assert header["format"] == U.FORMAT and header["class_names"] == list(NAMES)
    assert header["architecture"] == model.config and header["info"] == {"note": "test"}
    np.testing.assert_array_equal(U.predict(loaded, xi), U.predict(model, xi))
    for k, v in model.state().items():
        np.testing.assert_array_equal(loaded.state()[k], v)
    with np.load(path, allow_pickle=False) as f:  # plain arrays only
        assert all(f[k].dtype != object for k in f.files)
    with zipfile.ZipFile(path) as z:
        header_bytes = np.lib.format.read_array(z.open("__header__.npy"))
    assert json.loads(header_bytes.tobytes())["architecture"]["up"] == "unpool"


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"nope\.npz"):
        U.load(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(FileFormatError, match=r"junk\.npz"):
        U.load(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(FileFormatError, match="no __header__"):
        U.load(plain)
    # a header for another architecture: the arrays do not fit
    model = U.UNet(5, levels=2, width=4)
    path = tmp_path / "m.npz"
    U.save(model, path, class_names=NAMES)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays["__header__"].tobytes())
    header["architecture"]["width"] = 8
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(FileFormatError, match=r"bad\.npz: array .* has shape"):
        U.load(tmp_path / "bad.npz")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __header__=np.array([{"format": U.FORMAT}], dtype=object))
    with pytest.raises(FileFormatError, match=r"pickled\.npz"):
        U.load(pickled)


def test_predict_pads_odd_sizes() -> None:
    model = U.UNet(5, levels=3, width=4)
    img = np.random.default_rng(0).integers(0, 256, (3, 13, 18, 3), dtype=np.uint8)
    pred = U.predict(model, img)
    assert pred.shape == (3, 13, 18) and pred.dtype == np.uint8 and pred.max() < 5
