/* The counting passes over PNG image data: see png_passes.h. */
#include <stdlib.h>
#include <string.h>

#include "png_chunks.h"
#include "png_inflate.h"
#include "png_passes.h"

/* ------------------------------------------------------------------------ Cityscapes pass */

/* Add a run of n pixels of (label g, prediction p, instance k). */
static inline void add_run(unsigned g, unsigned p, unsigned k, int64_t n, int64_t offset,
                           const uint8_t *pred_lut, const uint8_t *category_of,
                           const uint8_t *label_of, const uint8_t *inst_cat, int64_t *hist,
                           int64_t *size, int64_t *tp, int64_t *cat_tp)
{
    hist[g << 8 | p] += n;
    if ((int64_t)k > offset) { /* an instance (label id * 1000 + j), as cityscapesScripts */
        unsigned q = pred_lut[p];
        size[k] += n;
        if (q == label_of[k])
            tp[k] += n;
        if (category_of[q] == inst_cat[k])
            cat_tp[k] += n;
    }
}

int segpng_count_cityscapes_rows(
    const uint8_t *graw, size_t graw_len, const uint8_t *praw, size_t praw_len,
    const uint8_t *iraw, size_t iraw_len, size_t h, size_t w, int with_inst, int64_t offset,
    const uint8_t *pred_lut, size_t pred_lut_len, const uint8_t *category_of,
    size_t category_of_len, const uint8_t *label_of, size_t label_of_len,
    const uint8_t *inst_cat, size_t inst_cat_len, int64_t *hist, size_t hist_len,
    int64_t *size, size_t size_len, int64_t *tp, size_t tp_len, int64_t *cat_tp,
    size_t cat_tp_len, size_t *bad_file, size_t *bad_row)
{
    size_t stride8, total8, stride16 = 0, total16 = 0, nwords, y, j, q;
    uint8_t *grows, *prows;
    uint16_t *irows, *diff;
    unsigned char *block;

    if (!segpng_image_bytes(h, w, 1, &stride8, &total8) || graw_len != total8
            || praw_len != total8 || (total8 != 0 && (graw == NULL || praw == NULL)))
        return SEGPNG_BAD_LENGTH;
    if (with_inst && (!segpng_image_bytes(h, w, 2, &stride16, &total16) || iraw_len != total16
                      || (total16 != 0 && iraw == NULL)))
        return SEGPNG_BAD_LENGTH;
    if (pred_lut_len != 256 || category_of_len != 256 || label_of_len != 65536
            || inst_cat_len != 65536 || hist_len != 65536 || size_len != 65536
            || tp_len != 65536 || cat_tp_len != 65536 || pred_lut == NULL
            || category_of == NULL || label_of == NULL || inst_cat == NULL || hist == NULL
            || size == NULL || tp == NULL || cat_tp == NULL)
        return SEGPNG_BAD_LENGTH;
    if (h == 0 || w == 0) { /* rows of only a filter byte: checked, nothing to count */
        for (y = 0; y < h; y++) {
            if (graw[y * stride8] > 4 || praw[y * stride8] > 4
                    || (with_inst && iraw[y * stride16] > 4)) {
                *bad_file = graw[y * stride8] > 4 ? 0 : praw[y * stride8] > 4 ? 1 : 2;
                *bad_row = y;
                return SEGPNG_BAD_FILTER;
            }
        }
        return SEGPNG_OK;
    }
    /* row buffers: grows, prows 2w bytes each; irows 2w uint16; diff: w - 1 uint16 run
     * boundaries padded with zeros to whole blocks of four 64-bit words (nwords words). In
     * all under 10 w + 48 bytes, which fits a size_t for the widths the check below lets
     * through (and the image data holds at least w + 1 bytes). */
    nwords = (w + 14) / 16 * 4; /* whole blocks of 4 words (16 entries), at least w - 1 */
    if (w > (SIZE_MAX - 64) / 16)
        return SEGPNG_NO_MEMORY;
    block = malloc(2 * w + 2 * w + 4 * w + 8 * nwords + 8);
    if (block == NULL)
        return SEGPNG_NO_MEMORY;
    irows = (uint16_t *)(void *)block;               /* 4w bytes, 2-aligned */
    diff = (uint16_t *)(void *)(block + 4 * w);      /* 8 nwords bytes */
    grows = block + 4 * w + 8 * nwords;              /* 2w bytes */
    prows = grows + 2 * w;                           /* 2w bytes */
    memset(irows, 0, 4 * w * sizeof(uint8_t)); /* instance 0 everywhere without with_inst */
    memset(diff, 0, 8 * nwords);

    for (y = 0; y < h; y++) {
        size_t c0 = (y & 1) * w, p0 = w - c0, start;
        const uint8_t *row = graw + y * stride8;
        const uint8_t *g, *p;
        const uint16_t *k;
        if (row[0] > 4) {
            *bad_file = 0;
            *bad_row = y;
            free(block);
            return SEGPNG_BAD_FILTER;
        }
        segpng_row_u8(row[0], row + 1, y ? grows + p0 : NULL, grows + c0, w);
        row = praw + y * stride8;
        if (row[0] > 4) {
            *bad_file = 1;
            *bad_row = y;
            free(block);
            return SEGPNG_BAD_FILTER;
        }
        segpng_row_u8(row[0], row + 1, y ? prows + p0 : NULL, prows + c0, w);
        if (with_inst) {
            row = iraw + y * stride16;
            if (row[0] > 4) {
                *bad_file = 2;
                *bad_row = y;
                free(block);
                return SEGPNG_BAD_FILTER;
            }
            segpng_row_u16(row[0], row + 1, y ? irows + p0 : NULL, irows + c0, w);
        }
        g = grows + c0;
        p = prows + c0;
        k = irows + c0;
        /* diff[j] != 0 where pixel j + 1 starts a new run (a vectorised pass); then the runs,
         * ~100 pixels long, are looked for 16 entries (4 words) at a time */
        for (j = 0; j + 1 < w; j++)
            diff[j] = (uint16_t)((g[j + 1] ^ g[j]) | (p[j + 1] ^ p[j]) | (k[j + 1] ^ k[j]));
        start = 0;
        for (q = 0; q < nwords; q += 4) {
            if ((segpng_word(diff + 4 * q) | segpng_word(diff + 4 * q + 4)
                 | segpng_word(diff + 4 * q + 8) | segpng_word(diff + 4 * q + 12)) == 0)
                continue;
            for (j = 4 * q; j < 4 * q + 16; j++) {
                if (diff[j] != 0) {
                    add_run(g[start], p[start], k[start], (int64_t)(j + 1 - start), offset,
                            pred_lut, category_of, label_of, inst_cat, hist, size, tp, cat_tp);
                    start = j + 1;
                }
            }
        }
        add_run(g[start], p[start], k[start], (int64_t)(w - start), offset, pred_lut,
                category_of, label_of, inst_cat, hist, size, tp, cat_tp);
    }
    free(block);
    return SEGPNG_OK;
}

/* ------------------------------------------------------------------------ instance masks */

/* Whether n bytes are all zero (an OR the compiler vectorises). */
static inline int all_zero(const uint8_t *x, size_t n)
{
    size_t i;
    unsigned acc = 0;
    for (i = 0; i < n; i++)
        acc |= x[i];
    return acc == 0;
}

#define SEGPNG_CHUNK 64 /* bytes OR-ed together before a chunk is searched byte by byte */

/* Index of the first non-zero byte of x[:n], n if none. */
static inline size_t first_nonzero(const uint8_t *x, size_t n)
{
    size_t start = 0, i;
    while (start < n) {
        size_t stop = n - start > SEGPNG_CHUNK ? start + SEGPNG_CHUNK : n;
        if (!all_zero(x + start, stop - start))
            for (i = start; i < stop; i++)
                if (x[i] != 0)
                    return i;
        start = stop;
    }
    return n;
}

/* Index of the last non-zero byte of x[:n] (one is known to exist). */
static inline size_t last_nonzero(const uint8_t *x, size_t n)
{
    size_t stop = n, i;
    while (stop > 0) {
        size_t start = stop > SEGPNG_CHUNK ? stop - SEGPNG_CHUNK : 0;
        if (!all_zero(x + start, stop - start))
            for (i = stop; i > start; i--)
                if (x[i - 1] != 0)
                    return i - 1;
        stop = start;
    }
    return 0;
}

/* The state of the mask pass between rows. */
typedef struct {
    size_t w;
    const void *ids;
    const int32_t *index;
    size_t index_len;
    int64_t *counts;
    size_t counts_len;
    uint8_t *prev, *cur; /* two row buffers of w bytes: the row above, the row being made */
    int prev_row;        /* prev holds the row above (else the row above is all zero) */
    size_t plo, phi;     /* prev holds zeros outside [plo, phi) (the row's non-zero span) */
    size_t clo, chi;     /* cur holds zeros outside [clo, chi) (from an earlier row) */
    int status;          /* SEGPNG_OK, or why the pass stopped */
    size_t bad_row;
    int64_t top, bottom, left, right;
} mask_state;

/* One row y of the mask pass, for ids of 1 (wide == 0) or 2 bytes; called with a constant
 * wide, so that the compiler gives each a loop of its own. The filtered bytes x = row + 1 are
 * zero outside x[xlo:xhi) (the caller may know it; else 0, w). Returns 0, or -1 when the pass
 * stops (m->status: SEGPNG_BAD_FILTER with m->bad_row, or SEGPNG_BAD_INDEX).
 *
 * A mask row is mostly zeros, so only the span where the row can differ from zero is
 * un-filtered: the hull [hlo, hhi) of the non-zero bytes of x and of the row above. Left of it
 * every filter gives 0 from a = b = c = 0, so the row function starts there as at a row start;
 * right of it x = b = 0, where None and Up give 0, Sub repeats the last byte, Paeth too once
 * c = 0 (one byte on), and Average halves it (0 after eight bytes). The row buffers are known
 * zero outside the spans they hold, so only those are cleared. A row of zeros under a row of
 * zeros is zero whatever its filter: only its filter type is looked at. In the span of
 * non-zero mask pixels, the region is looked up again only where the ground-truth id
 * changes. */
static inline int mask_row(mask_state *m, const uint8_t *row, size_t y, int wide, size_t xlo,
                           size_t xhi)
{
    const size_t w = m->w, base = y * w, index_len = m->index_len, counts_len = m->counts_len;
    const int32_t *index = m->index;
    const uint8_t *ids8 = (const uint8_t *)m->ids;
    const uint16_t *ids16 = (const uint16_t *)m->ids;
    int64_t *counts = m->counts;
    const uint8_t *x = row + 1, *prev = m->prev_row ? m->prev : NULL;
    size_t lo, hi, i, run = 0, flo, fhi, hlo, hhi, ext, v, last_v = SIZE_MAX;
    unsigned ft = row[0], fill = 0;
    int64_t region = -1;
    uint8_t *swap, *cur = m->cur;
    if (ft > 4) {
        m->bad_row = y;
        m->status = SEGPNG_BAD_FILTER;
        return -1;
    }
    /* the non-zero bytes of x: [flo, fhi) */
    flo = xlo >= xhi ? w : xlo + first_nonzero(x + xlo, xhi - xlo);
    if (flo == xhi)
        flo = w;
    fhi = flo == w ? 0 : last_nonzero(x, xhi) + 1;
    if (prev == NULL) {
        if (flo == w)
            return 0; /* zero under zero: zero whatever the filter */
        hlo = flo;
        hhi = fhi;
    } else {
        hlo = flo < m->plo ? flo : m->plo;
        hhi = fhi > m->phi ? fhi : m->phi;
    }
    ext = hhi + (ft == 3 ? 8 : ft == 4 ? 1 : 0);
    if (ext > w)
        ext = w;
    /* cur: zeros left of hlo and right of ext where it held other bytes, the row in between */
    if (m->clo < hlo)
        memset(cur + m->clo, 0, (m->chi < hlo ? m->chi : hlo) - m->clo);
    segpng_row_u8(ft, x + hlo, prev != NULL ? prev + hlo : NULL, cur + hlo, ext - hlo);
    if (ft == 1 || ft == 4)
        fill = cur[ext - 1];
    if (fill != 0)
        memset(cur + ext, (int)fill, w - ext);
    else if (m->chi > ext)
        memset(cur + (m->clo > ext ? m->clo : ext), 0,
               m->chi - (m->clo > ext ? m->clo : ext));
    /* the non-zero span [lo, hi] of the row */
    lo = hlo + first_nonzero(cur + hlo, ext - hlo);
    if (lo == ext && fill == 0) { /* an all-zero row: cur holds zeros, prev is not needed */
        m->clo = m->chi = 0;
        m->prev_row = 0;
        return 0;
    }
    hi = fill != 0 ? w - 1 : last_nonzero(cur, ext);
    for (i = lo; i <= hi; i++) {
        if (cur[i] != 0) {
            int64_t r;
            v = wide ? ids16[base + i] : ids8[base + i];
            if (v == last_v) { /* the same ground-truth id: the same region */
                run++;
                continue;
            }
            if (v >= index_len) {
                m->status = SEGPNG_BAD_INDEX;
                break;
            }
            r = index[v];
            if (r < 0 || (uint64_t)r >= (uint64_t)counts_len) {
                m->status = SEGPNG_BAD_INDEX;
                break;
            }
            last_v = v;
            if (r == region) {
                run++;
            } else { /* a run of pixels on one region, added at its end */
                if (run)
                    counts[region] += (int64_t)run;
                region = r;
                run = 1;
            }
        }
    }
    if (run)
        counts[region] += (int64_t)run;
    if (m->status != SEGPNG_OK)
        return -1;
    if (m->top < 0)
        m->top = (int64_t)y;
    m->bottom = (int64_t)y + 1;
    if ((int64_t)lo < m->left)
        m->left = (int64_t)lo;
    if ((int64_t)hi + 1 > m->right)
        m->right = (int64_t)hi + 1;
    /* cur becomes the row above (zero outside [lo, hi]); prev, with what it holds, the buffer
     * to write next */
    m->clo = m->plo;
    m->chi = m->phi;
    m->plo = lo;
    m->phi = hi + 1;
    m->prev_row = 1;
    swap = m->prev;
    m->prev = cur;
    m->cur = swap;
    return 0;
}

/* The lengths and pointers of a mask pass (raw_len is checked by the caller); the state set up
 * with its row buffers (malloc'ed: free(m->prev < m->cur ? m->prev : m->cur), see
 * mask_free). Returns SEGPNG_OK, SEGPNG_BAD_LENGTH or SEGPNG_NO_MEMORY; *empty for h == 0
 * (nothing to allocate, the box is that of an empty mask). */
static int mask_setup(mask_state *m, size_t h, size_t w, const void *ids, size_t ids_len,
                      const int32_t *index, size_t index_len, int64_t *counts,
                      size_t counts_len, int *empty)
{
    size_t pixels;
    uint8_t *buffers;
    m->w = w;
    m->ids = ids;
    m->index = index;
    m->index_len = index_len;
    m->counts = counts;
    m->counts_len = counts_len;
    m->prev = m->cur = NULL;
    m->prev_row = 0;
    m->plo = m->clo = 0; /* (malloc's bytes: not known to be zero) */
    m->phi = m->chi = w;
    m->status = SEGPNG_OK;
    m->bad_row = 0;
    m->top = -1;
    m->bottom = 0;
    m->left = (int64_t)w;
    m->right = 0;
    *empty = 0;
    if (!segpng_mul(h, w, &pixels) || ids_len != pixels || (pixels != 0 && ids == NULL)
            || (index_len != 0 && index == NULL) || (counts_len != 0 && counts == NULL)
            || w > (size_t)INT64_MAX || h > (size_t)INT64_MAX)
        return SEGPNG_BAD_LENGTH;
    if (h == 0) { /* nothing to read; and nothing to allocate for a row of any width */
        *empty = 1;
        return SEGPNG_OK;
    }
    if (w > (SIZE_MAX - 1) / 2) /* (the rows hold h * (w + 1) bytes: not reached in practice) */
        return SEGPNG_NO_MEMORY;
    buffers = malloc(2 * w + 1);
    if (buffers == NULL)
        return SEGPNG_NO_MEMORY;
    m->prev = buffers;
    m->cur = buffers + w;
    return SEGPNG_OK;
}

static void mask_free(mask_state *m)
{
    free(m->prev < m->cur ? m->prev : m->cur);
}

static void mask_box(const mask_state *m, int64_t box[4])
{
    box[0] = m->top;
    box[1] = m->bottom;
    box[2] = m->left;
    box[3] = m->right;
}

/* The mask pass over the whole inflated image data. */
static inline int mask_overlaps(const uint8_t *raw, size_t raw_len, size_t h, size_t w,
                                const void *ids, int wide, size_t ids_len,
                                const int32_t *index, size_t index_len, int64_t *counts,
                                size_t counts_len, size_t *bad_row, int64_t box[4])
{
    size_t stride, total, y;
    mask_state m;
    int empty, status;

    if (!segpng_image_bytes(h, w, 1, &stride, &total) || raw_len != total
            || (total != 0 && raw == NULL))
        return SEGPNG_BAD_LENGTH;
    status = mask_setup(&m, h, w, ids, ids_len, index, index_len, counts, counts_len, &empty);
    if (status != SEGPNG_OK || empty) {
        if (status == SEGPNG_OK)
            mask_box(&m, box);
        return status;
    }
    for (y = 0; y < h; y++)
        if (mask_row(&m, raw + y * stride, y, wide, 0, w) < 0)
            break;
    mask_free(&m);
    if (m.status == SEGPNG_OK)
        mask_box(&m, box);
    else if (m.status == SEGPNG_BAD_FILTER)
        *bad_row = m.bad_row;
    return m.status;
}

int segpng_mask_overlaps_u8(const uint8_t *raw, size_t raw_len, size_t h, size_t w,
                            const uint8_t *ids, size_t ids_len, const int32_t *index,
                            size_t index_len, int64_t *counts, size_t counts_len,
                            size_t *bad_row, int64_t box[4])
{
    return mask_overlaps(raw, raw_len, h, w, ids, 0, ids_len, index, index_len, counts,
                         counts_len, bad_row, box);
}

int segpng_mask_overlaps_u16(const uint8_t *raw, size_t raw_len, size_t h, size_t w,
                             const uint16_t *ids, size_t ids_len, const int32_t *index,
                             size_t index_len, int64_t *counts, size_t counts_len,
                             size_t *bad_row, int64_t box[4])
{
    return mask_overlaps(raw, raw_len, h, w, ids, 1, ids_len, index, index_len, counts,
                         counts_len, bad_row, box);
}

/* --------------------------------------------------------------- instance masks, streamed */

static int mask_row_u8(void *ctx, size_t y, const uint8_t *row, size_t lo, size_t hi)
{
    return mask_row((mask_state *)ctx, row, y, 0, lo, hi);
}

static int mask_row_u16(void *ctx, size_t y, const uint8_t *row, size_t lo, size_t hi)
{
    return mask_row((mask_state *)ctx, row, y, 1, lo, hi);
}

/* The mask pass over the rows of a zlib stream (segpng_inflate_rows). */
static int mask_overlaps_stream(const uint8_t *stream, size_t stream_len, size_t h, size_t w,
                                const void *ids, int wide, size_t ids_len,
                                const int32_t *index, size_t index_len, int64_t *counts,
                                size_t counts_len, size_t *bad_row, int64_t box[4], int *why)
{
    size_t stride, total;
    mask_state m;
    int empty, status, stop = 0;

    if (!segpng_image_bytes(h, w, 1, &stride, &total) || (stream_len != 0 && stream == NULL))
        return SEGPNG_BAD_LENGTH;
    status = mask_setup(&m, h, w, ids, ids_len, index, index_len, counts, counts_len, &empty);
    if (status != SEGPNG_OK)
        return status;
    /* (h == 0: no rows, but the stream is still checked: it must inflate to nothing) */
    status = segpng_inflate_rows(stream, stream_len, stride, h,
                                 empty ? NULL : wide ? mask_row_u16 : mask_row_u8, &m, &stop);
    if (!empty)
        mask_free(&m);
    if (status == SEGPNG_INFLATE_NO_MEMORY)
        return SEGPNG_NO_MEMORY;
    if (status != SEGPNG_INFLATE_OK && status != SEGPNG_INFLATE_STOPPED) {
        *why = status;
        return SEGPNG_BAD_STREAM;
    }
    if (m.status == SEGPNG_OK)
        mask_box(&m, box);
    else if (m.status == SEGPNG_BAD_FILTER)
        *bad_row = m.bad_row;
    return m.status;
}

int segpng_mask_overlaps_stream_u8(const uint8_t *stream, size_t stream_len, size_t h,
                                   size_t w, const uint8_t *ids, size_t ids_len,
                                   const int32_t *index, size_t index_len, int64_t *counts,
                                   size_t counts_len, size_t *bad_row, int64_t box[4], int *why)
{
    return mask_overlaps_stream(stream, stream_len, h, w, ids, 0, ids_len, index, index_len,
                                counts, counts_len, bad_row, box, why);
}

int segpng_mask_overlaps_stream_u16(const uint8_t *stream, size_t stream_len, size_t h,
                                    size_t w, const uint16_t *ids, size_t ids_len,
                                    const int32_t *index, size_t index_len, int64_t *counts,
                                    size_t counts_len, size_t *bad_row, int64_t box[4],
                                    int *why)
{
    return mask_overlaps_stream(stream, stream_len, h, w, ids, 1, ids_len, index, index_len,
                                counts, counts_len, bad_row, box, why);
}

/* segeval.formats.png._MAX_DEFLATE_RATIO */
#define MAX_DEFLATE_RATIO 1040u

/* The mask pass over a whole PNG file: the chunk walk, then the streamed pass. */
static int mask_overlaps_png(const uint8_t *data, size_t len, size_t h, size_t w,
                             const void *ids, int wide, size_t ids_len, const int32_t *index,
                             size_t index_len, int64_t *counts, size_t counts_len,
                             size_t *bad_row, int64_t box[4], int *why)
{
    segpng_walk walk;
    const uint8_t *stream;
    uint8_t *gathered = NULL;
    size_t stream_len;
    int status;

    if (len != 0 && data == NULL)
        return SEGPNG_BAD_LENGTH;
    status = segpng_walk_chunks(data, len, &walk);
    if (status != SEGPNG_WALK_OK || walk.bit_depth != 8 || walk.colour_type != 0
            || walk.interlace != 0 || walk.animated || walk.width != w
            || walk.height != h) {
        *why = status;
        return SEGPNG_NOT_FAST;
    }
    stream_len = (size_t)walk.idat_bytes;
    /* image data too short for the image (segeval.formats.png refuses it before inflating,
     * with its own message; the inflater would refuse it too: deflate expands at most 1032
     * times) */
    if ((uint64_t)stream_len * MAX_DEFLATE_RATIO + 1024 < (uint64_t)h * ((uint64_t)w + 1)) {
        *why = SEGPNG_WALK_OK;
        return SEGPNG_NOT_FAST;
    }
    if (walk.idat_count == 1) {
        stream = data + walk.idat_start + 8;
    } else {
        gathered = malloc(stream_len ? stream_len : 1);
        if (gathered == NULL)
            return SEGPNG_NO_MEMORY;
        if (segpng_gather_idat(data, len, walk.idat_start, walk.idat_end, gathered,
                               stream_len) != SEGPNG_WALK_OK) {
            free(gathered); /* (not reached: the walk found these chunks) */
            return SEGPNG_BAD_LENGTH;
        }
        stream = gathered;
    }
    status = mask_overlaps_stream(stream, stream_len, h, w, ids, wide, ids_len, index,
                                  index_len, counts, counts_len, bad_row, box, why);
    free(gathered);
    return status;
}

int segpng_mask_overlaps_png_u8(const uint8_t *data, size_t len, size_t h, size_t w,
                                const uint8_t *ids, size_t ids_len, const int32_t *index,
                                size_t index_len, int64_t *counts, size_t counts_len,
                                size_t *bad_row, int64_t box[4], int *why)
{
    return mask_overlaps_png(data, len, h, w, ids, 0, ids_len, index, index_len, counts,
                             counts_len, bad_row, box, why);
}

int segpng_mask_overlaps_png_u16(const uint8_t *data, size_t len, size_t h, size_t w,
                                 const uint16_t *ids, size_t ids_len, const int32_t *index,
                                 size_t index_len, int64_t *counts, size_t counts_len,
                                 size_t *bad_row, int64_t box[4], int *why)
{
    return mask_overlaps_png(data, len, h, w, ids, 1, ids_len, index, index_len, counts,
                             counts_len, bad_row, box, why);
}
