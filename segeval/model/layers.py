"""Neural-network layers in plain NumPy, each with its forward and backward pass.

Conventions (PyTorch's): images are ``(N, C, H, W)`` float arrays (float32 for training,
float64 for gradient checks: every function keeps the dtype it is given); a convolution weight
is ``(C_out, C_in, kH, kW)``; ``stride`` and ``padding`` are an int or an ``(h, w)`` pair;
padding is zeros. "Convolution" is cross-correlation, as in every deep-learning library::

    y[n, o, i, j] = sum_{c, u, v} w[o, c, u, v] * x_pad[n, c, i*s + u, j*s + v]

**Convolution as a matrix.** For one image, ``conv2d`` is a linear map from ``C_in*H*W``
numbers to ``C_out*Ho*Wo`` numbers: ``conv2d(x).ravel() == M @ x.ravel()`` with the sparse
matrix ``M = conv2d_matrix(weight, (C_in, H, W))``. The *transposed* convolution is
multiplication by ``M.T``: it takes the *same* weight and maps ``C_out`` channels back to
``C_in`` channels, ``Ho x Wo`` back up to ``H x W``. With a 4x4 input and a 3x3 kernel, ``M`` is
4x16 (16 values down to a 2x2 output) and ``M.T`` maps 4 values back to 16. That is why the
transposed convolution is both the *backward pass* of a convolution with respect to its input
and the learnable *up-sampling* layer of a decoder (stride 2 doubles the size).

Both are computed with **im2col**: the ``kH x kW`` window under every output position is copied
into one column of a ``(C_in*kH*kW, N*Ho*Wo)`` matrix, so that the convolution is one matrix
product with the ``(C_out, C_in*kH*kW)`` reshaped weight. **col2im** is the adjoint: it adds
every column back into the window it came from (``kH*kW`` strided array additions, no Python
loop over pixels). ``conv2d`` = im2col then matmul; ``conv_transpose2d`` = matmul by the
transposed weight then col2im.

Backward functions take the gradient of the loss with respect to the output (``dy``) and the
forward inputs, and return the gradients with respect to the inputs and parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pair = int | tuple[int, int]


def _pair(v: Pair, name: str) -> tuple[int, int]:
    a, b = (v, v) if isinstance(v, int | np.integer) else tuple(v)
    return int(a), int(b)


def _check_4d(x: np.ndarray, name: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"The '{name}' parameter must be a 4-D (N, C, H, W) array. "
                         f"Got shape {x.shape} instead.")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution along one axis: ``(size + 2p - k) // s + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


# --------------------------------------------------------------------------- im2col / col2im

def im2col(x: np.ndarray, kernel: Pair, stride: Pair = 1, padding: Pair = 0) -> np.ndarray:
    """The windows of ``x`` ``(N, C, H, W)`` as the columns of a ``(C*kH*kW, N*Ho*Wo)``
    matrix: rows in ``(c, u, v)`` order (the order of ``weight.reshape(C_out, -1)``), columns
    in ``(n, i, j)`` order. Zero padding is applied first."""
    kh, kw = _pair(kernel, "kernel")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    n, c, h, w = x.shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if ho < 1 or wo < 1:
        raise ValueError(f"The input {h}x{w} is smaller than the {kh}x{kw} kernel "
                         f"(padding {ph},{pw}).")
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, : (ho - 1) * sh + 1 : sh,
                                                        : (wo - 1) * sw + 1 : sw]
    # (N, C, Ho, Wo, kH, kW) -> (C, kH, kW, N, Ho, Wo): one copy, rows of x stay rows
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo)


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel: Pair,
           stride: Pair = 1, padding: Pair = 0) -> np.ndarray:
    """The adjoint of :func:`im2col`: add each column of ``cols`` back into its window of a
    zero ``x_shape`` array (``kH*kW`` strided additions; overlapping windows add up), so that
    ``<im2col(x), cols> == <x, col2im(cols)>`` for every ``x`` and ``cols``."""
    kh, kw = _pair(kernel, "kernel")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    n, c, h, w = x_shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    c6 = cols.reshape(c, kh, kw, n, ho, wo)
    xp = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            xp[:, :, u : u + (ho - 1) * sh + 1 : sh, v : v + (wo - 1) * sw + 1 : sw] += c6[:, u, v]
    return np.ascontiguousarray(xp[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3))


def _channels_first(y: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(C, N*H*W)`` (a copy)."""
    return y.transpose(1, 0, 2, 3).reshape(y.shape[1], -1)


def _batch_first(rows: np.ndarray, n: int, h: int, w: int) -> np.ndarray:
    """``(C, N*H*W)`` -> contiguous ``(N, C, H, W)``."""
    return np.ascontiguousarray(rows.reshape(-1, n, h, w).transpose(1, 0, 2, 3))


# --------------------------------------------------------------------------- convolution

def conv2d(x: np.ndarray, weight: np.ndarray, stride: Pair = 1, padding: Pair = 0, *,
           bias: np.ndarray | None = None) -> np.ndarray:
    """2-D convolution (cross-correlation): ``x`` ``(N, C_in, H, W)``, ``weight``
    ``(C_out, C_in, kH, kW)``, optional ``bias`` ``(C_out,)`` -> ``(N, C_out, Ho, Wo)`` with
    ``Ho = (H + 2*padding - kH) // stride + 1``.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> conv2d(x, np.ones((1, 1, 3, 3)))[0, 0]
    array([[45., 54.],
           [81., 90.]])
    """
    _check_4d(x, "x")
    if weight.ndim != 4 or weight.shape[1] != x.shape[1]:
        raise ValueError(f"The 'weight' parameter must be (C_out, {x.shape[1]}, kH, kW) for "
                         f"an input with {x.shape[1]} channels. Got {weight.shape} instead.")
    return _conv2d(x, weight, stride, padding, bias)[0]


def _conv2d(x: np.ndarray, weight: np.ndarray, stride: Pair, padding: Pair,
            bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`conv2d` returning also the im2col matrix (kept by layers for the backward pass)."""
    c_out, _, kh, kw = weight.shape
    cols = im2col(x, (kh, kw), stride, padding)
    out = weight.reshape(c_out, -1) @ cols                       # (C_out, N*Ho*Wo)
    if bias is not None:
        out += bias[:, None]
    n, h, w = x.shape[0], *_out_hw(x.shape, weight.shape, stride, padding)
    return _batch_first(out, n, h, w), cols


def _out_hw(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair,
            padding: Pair) -> tuple[int, int]:
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    return (conv_output_size(x_shape[2], w_shape[2], sh, ph),
            conv_output_size(x_shape[3], w_shape[3], sw, pw))


def conv2d_backward(dy: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: Pair = 1,
                    padding: Pair = 0, *, cols: np.ndarray | None = None,
                    need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d`: ``(dx, dweight, dbias)`` for the output gradient ``dy``.

    ``dx`` is the transposed convolution of ``dy`` (:func:`conv_transpose2d`); ``cols`` is the
    im2col matrix of ``x`` if the caller kept it; ``need_dx=False`` skips ``dx`` (first layer).
    """
    c_out = weight.shape[0]
    if cols is None:
        cols = im2col(x, weight.shape[2:], stride, padding)
    dy_c = _channels_first(dy)                                   # (C_out, N*Ho*Wo)
    dw = (dy_c @ cols.T).reshape(weight.shape)
    db = dy_c.sum(axis=1)
    dx = None
    if need_dx:
        dx = col2im(weight.reshape(c_out, -1).T @ dy_c, x.shape, weight.shape[2:], stride,
                    padding)
    return dx, dw, db


def conv_transpose2d(y: np.ndarray, weight: np.ndarray, stride: Pair = 1, padding: Pair = 0,
                     output_size: tuple[int, int] | None = None, *,
                     bias: np.ndarray | None = None) -> np.ndarray:
    """Transposed convolution, the adjoint of :func:`conv2d` with the *same* weight.

    ``y`` is ``(N, C_out, Ho, Wo)``, ``weight`` ``(C_out, C_in, kH, kW)`` (the array a
    ``conv2d`` from ``C_in`` to ``C_out`` channels uses), optional ``bias`` ``(C_in,)``; the result
    is ``(N, C_in, H, W)`` with ``H = (Ho - 1) * stride - 2 * padding + kH`` unless
    ``output_size = (H, W)`` asks for one of the other sizes (up to ``stride - 1`` larger) that
    ``conv2d`` maps to ``Ho x Wo``. Without bias, for every ``x`` and ``y``::

        <conv2d(x, w), y> == <x, conv_transpose2d(y, w)>

    >>> y = np.ones((1, 1, 2, 2))
    >>> conv_transpose2d(y, np.ones((1, 1, 3, 3)))[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    """
    _check_4d(y, "y")
    if weight.ndim != 4 or weight.shape[0] != y.shape[1]:
        raise ValueError(f"The 'weight' parameter must be ({y.shape[1]}, C_in, kH, kW) for an "
                         f"input with {y.shape[1]} channels. Got {weight.shape} instead.")
    x_shape = transpose_output_shape(y.shape, weight.shape, stride, padding, output_size)
    c_out = weight.shape[0]
    x = col2im(weight.reshape(c_out, -1).T @ _channels_first(y), x_shape, weight.shape[2:],
               stride, padding)
    if bias is not None:
        x = x + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(x)


def transpose_output_shape(y_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair,
                           padding: Pair, output_size: tuple[int, int] | None
                           ) -> tuple[int, int, int, int]:
    """``(N, C_in, H, W)`` of :func:`conv_transpose2d`; checks ``output_size``."""
    n, _, ho, wo = y_shape
    kh, kw = w_shape[2:]
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if output_size is None:
        h, w = (ho - 1) * sh - 2 * ph + kh, (wo - 1) * sw - 2 * pw + kw
    else:
        h, w = (int(s) for s in output_size[-2:])
        if (conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)) != (ho, wo):
            raise ValueError(f"The 'output_size' parameter {h}x{w} is not mapped to {ho}x{wo} "
                             f"by this convolution.")
    return n, w_shape[1], h, w


def conv_transpose2d_backward(dx: np.ndarray, y: np.ndarray, weight: np.ndarray,
                              stride: Pair = 1, padding: Pair = 0
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_transpose2d`: ``(dy, dweight, dbias)`` for the output
    gradient ``dx`` ``(N, C_in, H, W)``. ``dy`` is ``conv2d(dx, weight)``: the adjoint of the
    adjoint."""
    c_out = weight.shape[0]
    cols = im2col(dx, weight.shape[2:], stride, padding)        # (C_in*kH*kW, N*Ho*Wo)
    dy = _batch_first(weight.reshape(c_out, -1) @ cols, y.shape[0], y.shape[2], y.shape[3])
    dw = (_channels_first(y) @ cols.T).reshape(weight.shape)
    return dy, dw, dx.sum(axis=(0, 2, 3))


def conv2d_matrix(weight: np.ndarray, in_shape: tuple[int, int, int], stride: Pair = 1,
                  padding: Pair = 0) -> Any:
    """The convolution of one image as an explicit ``scipy.sparse`` CSR matrix.

    ``in_shape = (C_in, H, W)``; the matrix ``M`` is ``(C_out*Ho*Wo, C_in*H*W)`` with
    ``conv2d(x, weight, stride, padding)[0].ravel() == M @ x[0].ravel()``, and
    ``conv_transpose2d(y, weight, stride, padding)[0].ravel() == M.T @ y[0].ravel()``.
    Entries that fall on the zero padding are left out.

    >>> m = conv2d_matrix(np.ones((1, 1, 3, 3)), (1, 4, 4))
    >>> m.shape, m.nnz
    ((4, 16), 36)
    """
    import scipy.sparse

    c_out, c_in, kh, kw = weight.shape
    ci, h, w = in_shape
    if ci != c_in:
        raise ValueError(f"The 'in_shape' parameter must have {c_in} channels for this weight. "
                         f"Got {in_shape} instead.")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    o, i, j, c, u, v = np.ix_(np.arange(c_out), np.arange(ho), np.arange(wo), np.arange(c_in),
                              np.arange(kh), np.arange(kw))
    iy, ix = i * sh - ph + u, j * sw - pw + v
    shape6 = (c_out, ho, wo, c_in, kh, kw)
    row = np.broadcast_to((o * ho + i) * wo + j, shape6)
    col = np.broadcast_to((c * h + iy) * w + ix, shape6)
    val = np.broadcast_to(weight[o, c, u, v], shape6)
    keep = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), shape6)
    return scipy.sparse.csr_matrix((val[keep], (row[keep], col[keep])),
                                   shape=(c_out * ho * wo, c_in * h * w))


# --------------------------------------------------------------------------- pooling

def max_pool2d(x: np.ndarray, kernel_size: int = 2, stride: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling without padding: ``(out, indices)``, both ``(N, C, Ho, Wo)``.

    ``indices`` (int64) is the position of each maximum in its input plane, flattened
    (``row * W + col``), as PyTorch's ``return_indices=True``; ties go to the first maximum in
    row-major window order. ``stride`` defaults to ``kernel_size``; rows or columns that do not
    fill a window are dropped.

    >>> out, idx = max_pool2d(np.array([[[[1., 5.], [7., 2.]]]]))
    >>> out[0, 0, 0, 0], idx[0, 0, 0, 0]
    (np.float64(7.0), np.int64(2))
    """
    _check_4d(x, "x")
    k, s = int(kernel_size), int(stride or kernel_size)
    n, c, h, w = x.shape
    ho, wo = conv_output_size(h, k, s), conv_output_size(w, k, s)
    if ho < 1 or wo < 1:
        raise ValueError(f"The input {h}x{w} is smaller than the {k}x{k} pooling window.")
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, : (ho - 1) * s + 1 : s,
                                                       : (wo - 1) * s + 1 : s]
    win = win.reshape(n, c, ho, wo, k * k)
    local = win.argmax(axis=-1)
    out = np.take_along_axis(win, local[..., None], axis=-1)[..., 0]
    rows = np.arange(ho)[:, None] * s + local // k
    cols = np.arange(wo)[None, :] * s + local % k
    return out, (rows * w + cols).astype(np.int64)


def max_unpool2d(x: np.ndarray, indices: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Put each value of ``x`` ``(N, C, Ho, Wo)`` at its ``indices`` position in a zero
    ``(N, C, H, W)`` array, ``output_size = (H, W)``: the partial inverse of
    :func:`max_pool2d`. Values sent to the same position add up (with non-overlapping windows,
    the default, that never happens)."""
    _check_4d(x, "x")
    if indices.shape != x.shape:
        raise ValueError(f"The 'indices' parameter must have the shape of x {x.shape}. "
                         f"Got {indices.shape} instead.")
    n, c = x.shape[:2]
    h, w = (int(v) for v in output_size[-2:])
    if indices.size and (indices.min() < 0 or indices.max() >= h * w):
        raise ValueError(f"The 'indices' parameter points outside a {h}x{w} plane.")
    flat = (np.arange(n * c).reshape(n, c, 1, 1) * (h * w) + indices).ravel()
    out = np.bincount(flat, weights=x.ravel(), minlength=n * c * h * w)
    return out.astype(x.dtype, copy=False).reshape(n, c, h, w)


def max_pool2d_backward(dy: np.ndarray, indices: np.ndarray,
                        input_size: tuple[int, int]) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: ``dy`` goes to the input position of each maximum
    (which is exactly :func:`max_unpool2d`)."""
    return max_unpool2d(dy, indices, input_size)


def max_unpool2d_backward(dy: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Gradient of :func:`max_unpool2d`: ``dy`` ``(N, C, H, W)`` read back at ``indices``."""
    n, c = indices.shape[:2]
    return np.take_along_axis(dy.reshape(n, c, -1), indices.reshape(n, c, -1),
                              axis=2).reshape(indices.shape)


# --------------------------------------------------------------------------- activations, norm

def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``, elementwise."""
    return np.maximum(x, 0)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`relu` (taken as 0 at ``x == 0``)."""
    return dy * (x > 0)


def batch_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float = 1e-5,
               mean: np.ndarray | None = None, var: np.ndarray | None = None) -> np.ndarray:
    """Batch normalisation over ``(N, H, W)`` for each channel of ``x`` ``(N, C, H, W)``.

    ``(x - mean) / sqrt(var + eps) * gamma + beta`` with ``gamma``, ``beta`` ``(C,)``. Without
    ``mean``/``var`` (training) the biased statistics of this batch are used; with them
    (inference) the given running statistics.
    """
    _check_4d(x, "x")
    if mean is None or var is None:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    scale = (gamma / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    shift = (beta - mean * scale).astype(x.dtype, copy=False)
    return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray, *,
                        eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`batch_norm` in training mode (batch
    statistics, which depend on ``x`` too)."""
    axes = (0, 2, 3)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * inv
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    g = gamma.reshape(1, -1, 1, 1) * inv / m
    dx = g * (m * dy - dbeta.reshape(1, -1, 1, 1) - xhat * dgamma.reshape(1, -1, 1, 1))
    return dx.astype(x.dtype, copy=False), dgamma, dbeta


# --------------------------------------------------------------------------- loss

def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """Softmax along ``axis`` (the class axis of ``(N, K, H, W)`` logits), overflow-safe."""
    z = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, target: np.ndarray, ignore_index: int | None = 255,
                          *, grad: bool = False) -> Any:
    """Mean cross-entropy of softmax(``logits``) over the pixels whose target is not ignored.

    ``logits`` ``(N, K, H, W)`` float, ``target`` ``(N, H, W)`` integer class indices
    ``0..K-1`` or ``ignore_index``. Returns the loss (a float, in nats per valid pixel; 0.0 when
    no pixel is valid), or ``(loss, dlogits)`` with ``grad=True``; ignored pixels get zero
    gradient. A target outside the classes raises ``ValueError``.

    >>> round(softmax_cross_entropy(np.zeros((1, 4, 1, 2)), np.array([[[1, 255]]])), 6)
    1.386294
    """
    _check_4d(logits, "logits")
    n, k, h, w = logits.shape
    if target.shape != (n, h, w):
        raise ValueError(f"The 'target' parameter must have shape {(n, h, w)}. "
                         f"Got {target.shape} instead.")
    t = target.astype(np.int64)
    valid = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    bad = valid & ((t < 0) | (t >= k))
    if bad.any():
        raise ValueError(f"The 'target' parameter holds label {int(t[bad][0])}, which is not a "
                         f"class 0..{k - 1} nor the ignore index {ignore_index}.")
    t = np.where(valid, t, 0)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1))
    picked = np.take_along_axis(shifted, t[:, None], axis=1)[:, 0]
    count = int(valid.sum())
    loss = float(((log_z - picked) * valid).sum() / max(count, 1))
    if not grad:
        return loss
    d = np.exp(shifted - log_z[:, None])
    np.put_along_axis(d, t[:, None], np.take_along_axis(d, t[:, None], axis=1) - 1, axis=1)
    d *= (valid / max(count, 1)).astype(logits.dtype)[:, None]
    return loss, d.astype(logits.dtype, copy=False)
