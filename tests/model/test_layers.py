"""The NumPy layers against finite differences, explicit matrices and SciPy.

Every backward pass is checked by central finite differences in float64: for a random output
weighting ``R``, the analytic gradient of ``sum(R * f(x))`` must match
``(f(x + h e_i) - f(x - h e_i)) / 2h`` at every coordinate.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

from segeval.model import layers as L


def numeric_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar function ``f`` at ``x`` (all coordinates)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return g


def assert_grad(analytic: np.ndarray, f, x: np.ndarray, rtol: float = 1e-5) -> None:
    numeric = numeric_grad(f, x)
    scale = max(1.0, float(np.abs(numeric).max()))
    np.testing.assert_allclose(analytic, numeric, rtol=0, atol=rtol * scale)


CONV_CASES = [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2), ((2, 1), (0, 1))]


@pytest.mark.parametrize(("stride", "padding"), CONV_CASES)
def test_conv2d_gradients(stride, padding) -> None:
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 6, 7)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    r = rng.normal(size=L.conv2d(x, w, stride, padding).shape)

    def loss() -> float:
        return float((L.conv2d(x, w, stride, padding, bias=b) * r).sum())

    dx, dw, db = L.conv2d_backward(r, x, w, stride, padding)
    assert_grad(dx, loss, x)
    assert_grad(dw, loss, w)
    assert_grad(db, loss, b)


@pytest.mark.parametrize(("stride", "padding"), CONV_CASES)
def test_conv_transpose2d_gradients(stride, padding) -> None:
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(4, 3, 3, 2)), rng.normal(size=3)
    y = rng.normal(size=(2, 4, 3, 3))
    r = rng.normal(size=L.conv_transpose2d(y, w, stride, padding).shape)

    def loss() -> float:
        return float((L.conv_transpose2d(y, w, stride, padding, bias=b) * r).sum())

    dy, dw, db = L.conv_transpose2d_backward(r, y, w, stride, padding)
    assert_grad(dy, loss, y)
    assert_grad(dw, loss, w)
    assert_grad(db, loss, b)


@pytest.mark.parametrize(("kernel", "stride"), [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_max_pool_and_unpool_gradients(kernel, stride) -> None:
    rng = np.random.default_rng(2)
    # distinct values far apart: the arg-max does not change under the +-h probe
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6).astype(np.float64)
    out, idx = L.max_pool2d(x, kernel, stride)
    r = rng.normal(size=out.shape)
    dx = L.max_pool2d_backward(r, idx, x.shape[2:])
    assert_grad(dx, lambda: float((L.max_pool2d(x, kernel, stride)[0] * r).sum()), x)

    y = rng.normal(size=out.shape)
    r2 = rng.normal(size=x.shape)
    dy = L.max_unpool2d_backward(r2, idx)
    assert_grad(dy, lambda: float((L.max_unpool2d(y, idx, x.shape[2:]) * r2).sum()), y)


def test_relu_gradient() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4, 4))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    r = rng.normal(size=x.shape)
    assert_grad(L.relu_backward(r, x), lambda: float((L.relu(x) * r).sum()), x)


def test_batch_norm_gradients() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(2.0, 3.0, size=(3, 4, 3, 5))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    r = rng.normal(size=x.shape)

    def loss() -> float:
        return float((L.batch_norm(x, gamma, beta) * r).sum())

    dx, dgamma, dbeta = L.batch_norm_backward(r, x, gamma)
    assert_grad(dx, loss, x)
    assert_grad(dgamma, loss, gamma)
    assert_grad(dbeta, loss, beta)


def test_batch_norm_statistics() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(5.0, 2.0, size=(4, 3, 8, 8))
    y = L.batch_norm(x, np.ones(3), np.zeros(3), eps=0.0)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-12)
    mean, var = np.array([1.0, 2.0, 3.0]), np.array([4.0, 1.0, 0.25])
    y = L.batch_norm(x, np.full(3, 2.0), np.full(3, 0.5), eps=0.0, mean=mean, var=var)
    np.testing.assert_allclose(y, (x - mean[:, None, None]) / np.sqrt(var)[:, None, None] * 2
                               + 0.5)


def test_softmax_cross_entropy_value_gradient_and_ignore() -> None:
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(2, 5, 3, 4)) * 3
    target = rng.integers(0, 5, size=(2, 3, 4))
    target[0, 0, :2] = 255
    loss, d = L.softmax_cross_entropy(logits, target, 255, grad=True)
    logp = scipy.special.log_softmax(logits, axis=1)
    valid = target != 255
    n, _, h, w = logits.shape
    picked = [logp[i, target[i, y, x], y, x] for i in range(n) for y in range(h) for x in range(w)
              if valid[i, y, x]]
    assert loss == pytest.approx(-np.mean(picked), rel=1e-12)
    assert_grad(d, lambda: L.softmax_cross_entropy(logits, target, 255), logits)
    assert not d[0, :, 0, :2].any()  # ignored pixels get no gradient
    assert L.softmax_cross_entropy(logits, np.full(target.shape, 255), 255) == 0.0
    with pytest.raises(ValueError, match="label 7"):
        L.softmax_cross_entropy(logits, np.full(target.shape, 7), 255)


# --------------------------------------------------------------------------- conv as a matrix

def test_the_4x4_example_conv_is_4x16_and_its_transpose_16x4() -> None:
    rng = np.random.default_rng(7)
    w = rng.normal(size=(1, 1, 3, 3))
    m = L.conv2d_matrix(w, (1, 4, 4))
    assert m.shape == (4, 16) and m.nnz == 4 * 9
    x = rng.normal(size=(1, 1, 4, 4))
    y = L.conv2d(x, w)
    assert y.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(m @ x.ravel(), y.ravel(), atol=1e-12)
    y2 = rng.normal(size=(1, 1, 2, 2))
    up = L.conv_transpose2d(y2, w)
    assert up.shape == (1, 1, 4, 4)
    np.testing.assert_allclose(m.T @ y2.ravel(), up.ravel(), atol=1e-12)
    # row 0 of M is the kernel laid on the top-left 3x3 window of the 4x4 input
    dense = m.toarray()
    np.testing.assert_array_equal(dense[0].reshape(4, 4)[:3, :3], w[0, 0])
    assert not dense[0].reshape(4, 4)[3].any() and not dense[0].reshape(4, 4)[:, 3].any()


@settings(max_examples=40, deadline=None)
@given(
    c_in=st.integers(1, 3), c_out=st.integers(1, 3), h=st.integers(3, 8), w=st.integers(3, 8),
    k=st.integers(1, 3), stride=st.integers(1, 3), padding=st.integers(0, 2),
    seed=st.integers(0, 2**31),
)
def test_transposed_conv_is_multiplication_by_the_transpose(c_in, c_out, h, w, k, stride,
                                                            padding, seed) -> None:
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(c_out, c_in, k, k))
    x = rng.normal(size=(2, c_in, h, w))
    y = L.conv2d(x, weight, stride, padding)
    m = L.conv2d_matrix(weight, (c_in, h, w), stride, padding)
    assert m.shape == (y[0].size, x[0].size)
    for i in range(2):
        np.testing.assert_allclose(m @ x[i].ravel(), y[i].ravel(), atol=1e-10)
    r = rng.normal(size=y.shape)
    xt = L.conv_transpose2d(r, weight, stride, padding, output_size=(h, w))
    assert xt.shape == x.shape
    for i in range(2):
        np.testing.assert_allclose(m.T @ r[i].ravel(), xt[i].ravel(), atol=1e-10)
    # the adjoint identity <conv(x), r> == <x, conv_transpose(r)>
    assert np.vdot(y, r) == pytest.approx(np.vdot(x, xt), rel=1e-10, abs=1e-10)


def test_conv2d_matches_scipy_correlate2d() -> None:
    rng = np.random.default_rng(8)
    x, w, b = rng.normal(size=(2, 3, 9, 7)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    for padding in (0, 1):
        y = L.conv2d(x, w, 1, padding, bias=b)
        mode = "valid" if padding == 0 else "same"
        for n in range(2):
            for o in range(4):
                ref = sum(scipy.signal.correlate2d(x[n, c], w[o, c], mode=mode)
                          for c in range(3)) + b[o]
                np.testing.assert_allclose(y[n, o], ref, atol=1e-12)
    # stride 2 is the stride-1 result sampled every other pixel
    np.testing.assert_allclose(L.conv2d(x, w, 2, 1), L.conv2d(x, w, 1, 1)[:, :, ::2, ::2])


def test_conv_transpose_output_size() -> None:
    rng = np.random.default_rng(9)
    w = rng.normal(size=(2, 3, 2, 2))
    y = rng.normal(size=(1, 2, 4, 4))
    assert L.conv_transpose2d(y, w, 2).shape == (1, 3, 8, 8)
    w3 = rng.normal(size=(2, 3, 3, 3))
    assert L.conv_transpose2d(y, w3, 2, 1).shape == (1, 3, 7, 7)
    assert L.conv_transpose2d(y, w3, 2, 1, output_size=(8, 7)).shape == (1, 3, 8, 7)
    with pytest.raises(ValueError, match="output_size"):
        L.conv_transpose2d(y, w3, 2, 1, output_size=(9, 7))
    with pytest.raises(ValueError, match="weight"):
        L.conv_transpose2d(y, w3.transpose(1, 0, 2, 3), 2)


def test_im2col_col2im_are_adjoint() -> None:
    rng = np.random.default_rng(10)
    x = rng.normal(size=(2, 3, 7, 6))
    cols = L.im2col(x, (3, 2), (2, 1), (1, 0))
    r = rng.normal(size=cols.shape)
    back = L.col2im(r, x.shape, (3, 2), (2, 1), (1, 0))
    assert np.vdot(cols, r) == pytest.approx(np.vdot(x, back), rel=1e-12)


def test_max_pool_values_indices_and_unpool() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 3, 6, 8))
    out, idx = L.max_pool2d(x)
    np.testing.assert_array_equal(out, x.reshape(2, 3, 3, 2, 4, 2).max(axis=(3, 5)))
    # indices are flat positions in the input plane (PyTorch's return_indices convention)
    np.testing.assert_array_equal(np.take_along_axis(x.reshape(2, 3, -1), idx.reshape(2, 3, -1),
                                                     axis=2).reshape(out.shape), out)
    up = L.max_unpool2d(out, idx, (6, 8))
    np.testing.assert_array_equal(up, np.where(up != 0, x, 0))
    assert (up != 0).sum() == out.size
    # an odd size drops the last row, as PyTorch does
    out7, _ = L.max_pool2d(rng.normal(size=(1, 1, 7, 5)))
    assert out7.shape == (1, 1, 3, 2)
    # ties go to the first maximum in row-major order
    _, tie = L.max_pool2d(np.ones((1, 1, 2, 2)))
    assert tie.item() == 0


def test_the_example_in_docs_model_md_runs() -> None:
    from tests.conftest import REPO

    text = (REPO / "docs" / "model.md").read_text(encoding="utf-8")
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "docs/model.md", "exec"), {})
