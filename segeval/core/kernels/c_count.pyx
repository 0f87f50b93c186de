# cython: language_level=3
"""Compiled counting kernels (C through Cython; the GIL is released in every loop).

One load-increment-store per pixel and no temporaries, as the NumPy reference kernels
(:mod:`segeval.core.kernels.reference`, :func:`segeval.core.kernels.cityscapes.
count_cityscapes_reference`, :func:`segeval.core.panoptic.intersections` with
``kernel="table"``) define them; the tests hold them to the same integers.

Every function takes flat C-contiguous arrays (typed memoryviews: a wrong dtype or a
non-contiguous array is a ``ValueError`` from Cython, never a wrong read) and checks every
length it indexes with before the loop, so that no input can read or write outside the arrays.
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t


cdef extern from "histogram.h" nogil:
    void segeval_histogram_u8(const uint8_t *gt, const uint8_t *pred, size_t n, int64_t *hist)

ctypedef fused gt_t:
    uint8_t
    uint16_t
    int16_t
    int32_t
    uint32_t
    int64_t

ctypedef fused pred_t:
    uint8_t
    uint16_t
    int16_t
    int32_t
    uint32_t
    int64_t


def histogram_u8(const uint8_t[::1] gt, const uint8_t[::1] pred, int64_t[::1] hist):
    """``hist[gt[i] << 8 | pred[i]] += 1`` for every pixel: the (ground truth, prediction)
    byte-pair histogram, every value its own bin (``hist`` has 65536 entries); runs of one pair
    are added eight pixels at a time (``native/histogram.h``)."""
    cdef Py_ssize_t n = gt.shape[0]
    if pred.shape[0] != n or hist.shape[0] != 65536:
        raise ValueError("histogram_u8: gt and pred differ in length, or hist is not 65536")
    if n == 0:
        return
    with nogil:
        segeval_histogram_u8(&gt[0], &pred[0], <size_t>n, &hist[0])


def count_general(const gt_t[::1] gt, const pred_t[::1] pred, int64_t c, int64_t ignore,
                  bint use_ignore, int64_t[:, ::1] table):
    """Add the (gt, pred) pairs to ``table`` (``(c, c + 1)``; column ``c``: a prediction
    outside ``[0, c)``), skipping ground truth equal to ``ignore`` (with ``use_ignore``) and
    ground truth outside ``[0, c)``. Returns ``(bad_gt_count, bad_gt_value, bad_pred_seen,
    bad_pred_value)``, the smallest bad values."""
    cdef Py_ssize_t i, n = gt.shape[0]
    cdef int64_t g, p, bad_gt_count = 0, bad_gt_value = 0, bad_pred_value = 0
    cdef bint bad_pred_seen = False
    if pred.shape[0] != n or table.shape[0] != c or table.shape[1] != c + 1:
        raise ValueError("count_general: gt and pred differ in length, or table is not (c, c+1)")
    with nogil:
        for i in range(n):
            g = <int64_t>gt[i]
            if use_ignore and g == ignore:
                continue
            if g < 0 or g >= c:
                if bad_gt_count == 0 or g < bad_gt_value:
                    bad_gt_value = g
                bad_gt_count += 1
                continue
            p = <int64_t>pred[i]
            if p < 0 or p >= c:
                if not bad_pred_seen or p < bad_pred_value:
                    bad_pred_seen = True
                    bad_pred_value = p
                p = c
            table[g, p] += 1
    return bad_gt_count, bad_gt_value, bad_pred_seen, bad_pred_value


def pair_counts(const gt_t[::1] gt, const pred_t[::1] pred, const uint16_t[::1] lut_gt,
                const uint8_t[::1] lut_pred, int64_t[::1] out):
    """Add the pairs of two flat panoptic id maps to ``out`` (65536 entries): each id through
    its lookup table (ids past the end take the last entry, "unknown"), the OR of the two
    entries is the pair's cell. ``lut_gt`` entries are segment index << 8, ``lut_pred``
    entries segment indices; the two tables have the same length. Returns ``False`` (``out``
    partly filled) as soon as an id is negative."""
    cdef Py_ssize_t i, n = gt.shape[0]
    cdef int64_t g, p, last = lut_gt.shape[0] - 1
    cdef bint ok = True
    if (pred.shape[0] != n or lut_gt.shape[0] == 0 or lut_pred.shape[0] != lut_gt.shape[0]
            or out.shape[0] != 65536):
        raise ValueError("pair_counts: mismatched lengths")
    with nogil:
        for i in range(n):
            g = <int64_t>gt[i]
            p = <int64_t>pred[i]
            if g < 0 or p < 0:
                ok = False
                break
            if g > last:
                g = last
            if p > last:
                p = last
            out[lut_gt[g] | lut_pred[p]] += 1
    return ok


def count_with_instances(const uint8_t[::1] gt, const uint8_t[::1] pred,
                         const uint16_t[::1] inst, int offset, const uint8_t[::1] pred_lut,
                         const uint8_t[::1] category_of, const uint8_t[::1] label_of,
                         const uint8_t[::1] inst_cat, int64_t[::1] hist, int64_t[::1] size,
                         int64_t[::1] tp, int64_t[::1] cat_tp):
    """The Cityscapes pass (:func:`segeval.core.kernels.cityscapes.count_cityscapes`): the
    byte-pair histogram of every pixel, and for instanceIds values ``k > offset`` the
    instance's size, own-label hits (``pred_lut[p] == label_of[k]``) and category hits
    (``category_of[pred_lut[p]] == inst_cat[k]``). Tables: 256 entries for ``pred_lut`` and
    ``category_of``, 65536 for the others."""
    cdef Py_ssize_t i, n = gt.shape[0]
    cdef uint8_t p, q
    cdef uint16_t k
    if (pred.shape[0] != n or inst.shape[0] != n or pred_lut.shape[0] != 256
            or category_of.shape[0] != 256 or label_of.shape[0] != 65536
            or inst_cat.shape[0] != 65536 or hist.shape[0] != 65536 or size.shape[0] != 65536
            or tp.shape[0] != 65536 or cat_tp.shape[0] != 65536):
        raise ValueError("count_with_instances: mismatched lengths")
    with nogil:
        for i in range(n):
            p = pred[i]
            hist[(<Py_ssize_t>gt[i] << 8) | p] += 1
            k = inst[i]
            if k > offset:
                q = pred_lut[p]
                size[k] += 1
                if q == label_of[k]:
                    tp[k] += 1
                if category_of[q] == inst_cat[k]:
                    cat_tp[k] += 1


ctypedef fused value_t:
    uint8_t
    uint16_t
    int32_t
    uint32_t
    int64_t


def value_counts(const value_t[::1] values, int64_t[::1] counts):
    """``counts[v] += 1`` for every ``v`` of ``values``. Returns ``False`` (``counts`` partly
    filled) at the first value that is negative or not below ``len(counts)``.

    Runs of equal values (label maps are made of them) are added once per run: one count per
    pixel into the same entry would wait on the previous one (a store-to-load chain; measured:
    2.3 ns per pixel of a 2048x1024 instanceIds map, 0.6 ns with runs)."""
    cdef Py_ssize_t i, start = 0, n = values.shape[0], m = counts.shape[0]
    cdef int64_t v, prev
    cdef bint ok = True
    if n == 0:
        return True
    prev = <int64_t>values[0]
    if prev < 0 or prev >= m:
        return False
    with nogil:
        for i in range(1, n):
            v = <int64_t>values[i]
            if v != prev:
                counts[prev] += i - start
                if v < 0 or v >= m:
                    ok = False
                    break
                prev = v
                start = i
        else:
            counts[prev] += n - start
    return ok
