/* libFuzzer target for segeval's native PNG kernels (segeval/core/kernels/native/).
 *
 * One input drives every kernel with header fields and bytes taken from it: the un-filters
 * (png_filters.h), the fused Cityscapes pass and the instance-mask pass (png_passes.h) and the
 * chunk walk (png_chunks.h), with arbitrary h, w and buffer lengths. Every buffer is allocated
 * at exactly the length passed, so that AddressSanitizer sees any access outside it.
 *
 * Besides memory errors, each result is checked against a slow reference written here from
 * the PNG specification (byte by byte, any bpp, then packed): a kernel that returns success
 * must give the reference's pixels, counts and box; a refusal must be the one the reference
 * expects (the same bad row, file or length). A difference calls abort().
 *
 * Input layout (all fields optional: missing bytes read as 0):
 *   byte 0      flags: bits 0-1 the un-filter kind (grey8, grey16, RGB, RGBA); bit 2 huge
 *               sizes (h and w shifted left by bytes 5 and 8: the overflow checks); bit 3 raw
 *               buffers of a wrong length; bit 4 output buffers of a wrong length; bit 5 the
 *               fused pass with instanceIds; bit 6 uint16 ground truth in the mask pass;
 *               bit 7 filter-type bytes as given (else taken modulo 5: mostly valid rows)
 *   bytes 1-2   h (modulo 24 unless huge), bytes 3-4 w (modulo 200 unless huge)
 *   byte 5      a signed length error for bit 3/4 (and h's shift when huge)
 *   byte 6      mask pass: length of the region index table (0 to 255)
 *   byte 7      mask pass: length of counts (0 to 15); bit 7: index values taken modulo it
 *   byte 8      fused pass: lookup-table seed and instance offset (and w's shift when huge)
 *   byte 9      bit 0: walk the chunks of signature + payload; bit 1: recompute the CRC of
 *               every chunk first (so that the walk goes past the CRC check)
 *   bytes 10-   the payload: image bytes (used cyclically), ids, index values, chunks
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "png_chunks.h"
#include "png_filters.h"
#include "png_passes.h"

#define MAX_H 24
#define MAX_W 200

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_png.c:%d: check failed: %s\n", __LINE__, #cond);        \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

typedef struct {
    const uint8_t *data;
    size_t size;
} input;

static unsigned byte_at(const input *in, size_t i) { return i < in->size ? in->data[i] : 0; }

/* n bytes of the payload from offset `skip`, cyclically (zeros for an empty payload); filter
 * bytes (every `stride`-th from 0) modulo 5 unless raw_filters. Exactly n bytes are
 * allocated (1 for n == 0). */
static uint8_t *payload_bytes(const input *in, size_t skip, size_t n, size_t stride,
                              int raw_filters)
{
    const uint8_t *p = in->data + (in->size > 10 ? 10 : in->size);
    size_t m = in->size > 10 ? in->size - 10 : 0, i;
    uint8_t *out = malloc(n ? n : 1);
    CHECK(out != NULL);
    for (i = 0; i < n; i++)
        out[i] = m ? p[(skip + i) % m] : 0;
    if (!raw_filters && stride)
        for (i = 0; i < n; i += stride)
            out[i] %= 5;
    return out;
}

/* ------------------------------------------------------------------ the reference decoder */

static int ref_paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc)
        return a;
    return pb <= pc ? b : c;
}

/* Un-filter h rows of rowbytes bytes (bpp per pixel) into img, from the specification.
 * Returns the first row whose filter type is not 0..4 (rows above it are done), or h. */
static size_t ref_unfilter(const uint8_t *raw, size_t h, size_t rowbytes, size_t bpp,
                           uint8_t *img)
{
    size_t y, i;
    for (y = 0; y < h; y++) {
        const uint8_t *row = raw + y * (rowbytes + 1);
        uint8_t *cur = img + y * rowbytes;
        const uint8_t *up = y ? cur - rowbytes : NULL;
        if (row[0] > 4)
            return y;
        for (i = 0; i < rowbytes; i++) {
            int x = row[1 + i], a = i >= bpp ? cur[i - bpp] : 0, b = up ? up[i] : 0;
            int c = (up && i >= bpp) ? up[i - bpp] : 0, pred = 0;
            switch (row[0]) {
            case 1: pred = a; break;
            case 2: pred = b; break;
            case 3: pred = (a + b) / 2; break;
            case 4: pred = ref_paeth(a, b, c); break;
            default: pred = 0; break;
            }
            cur[i] = (uint8_t)((x + pred) & 0xFF);
        }
    }
    return h;
}

/* Pixel j of an image of bytes un-filtered with bpp bytes per pixel, as the kernels pack it. */
static uint32_t ref_pixel(const uint8_t *img, size_t j, size_t bpp)
{
    const uint8_t *p = img + j * bpp;
    if (bpp == 1)
        return p[0];
    if (bpp == 2)
        return (uint32_t)p[0] << 8 | p[1];
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

/* -------------------------------------------------------------------------- the sizes */

typedef struct {
    size_t h, w;
    int huge;
} dims;

static dims get_dims(const input *in)
{
    dims d;
    size_t h = byte_at(in, 1) | byte_at(in, 2) << 8, w = byte_at(in, 3) | byte_at(in, 4) << 8;
    unsigned bits = (unsigned)(sizeof(size_t) * 8);
    d.huge = (byte_at(in, 0) & 4) != 0;
    if (d.huge) {
        d.h = h << (byte_at(in, 5) % bits);
        d.w = w << (byte_at(in, 8) % bits);
    } else {
        d.h = h % MAX_H;
        d.w = w % MAX_W;
    }
    return d;
}

/* The exact length, or (with the flag) the exact length plus a signed error, at least 0;
 * sizes over 2^18 get a small buffer whatever they claim. */
static size_t buffer_len(const input *in, int ok, size_t exact, int wrong)
{
    long delta = (signed char)byte_at(in, 5);
    if (!ok || exact > ((size_t)1 << 18))
        return (size_t)(delta < 0 ? -delta : delta);
    if (!wrong)
        return exact;
    if (delta == 0)
        delta = 1;
    return delta < 0 && (size_t)(-delta) > exact ? 0 : (size_t)((long)exact + delta);
}

/* ------------------------------------------------------------------------ the un-filters */

static void fuzz_unfilter(const input *in, dims d)
{
    static const size_t BPP[4] = {1, 2, 3, 4};
    unsigned flags = byte_at(in, 0);
    size_t bpp = BPP[flags & 3], stride = 0, total = 0, pixels = 0, bad = (size_t)-1, i;
    int ok = segpng_image_bytes(d.h, d.w, bpp, &stride, &total);
    int pix_ok = segpng_mul(d.h, d.w, &pixels);
    size_t raw_len = buffer_len(in, ok, total, flags & 8);
    size_t out_len = buffer_len(in, pix_ok, pixels, flags & 16);
    int exact = ok && pix_ok && raw_len == total && out_len == pixels;
    uint8_t *raw = payload_bytes(in, 0, raw_len, exact ? stride : 0, flags & 128);
    size_t item = bpp == 1 ? 1 : bpp == 2 ? 2 : 4;
    void *out = malloc(out_len ? out_len * item : 1);
    int status;
    CHECK(out != NULL);
    if (bpp == 1)
        status = segpng_unfilter_gray8(raw, raw_len, out, out_len, d.h, d.w, &bad);
    else if (bpp == 2)
        status = segpng_unfilter_gray16(raw, raw_len, out, out_len, d.h, d.w, &bad);
    else
        status = segpng_unfilter_ids(raw, raw_len, bpp, out, out_len, d.h, d.w, &bad);
    if (!exact) {
        CHECK(status == SEGPNG_BAD_LENGTH);
    } else {
        uint8_t *img = malloc(total ? total : 1);
        size_t done;
        CHECK(img != NULL);
        done = ref_unfilter(raw, d.h, d.w * bpp, bpp, img);
        CHECK(status == (done == d.h ? SEGPNG_OK : SEGPNG_BAD_FILTER));
        if (status == SEGPNG_BAD_FILTER)
            CHECK(bad == done);
        for (i = 0; i < done * d.w; i++) {
            uint32_t want = ref_pixel(img, i, bpp), got;
            got = bpp == 1 ? ((uint8_t *)out)[i] : bpp == 2 ? ((uint16_t *)out)[i]
                                                            : ((uint32_t *)out)[i];
            CHECK(got == want);
        }
        free(img);
    }
    free(raw);
    free(out);
}

/* ---------------------------------------------------------------------- the fused pass */

static int64_t k_hist[65536], k_size[65536], k_tp[65536], k_cat[65536];
static int64_t r_hist[65536], r_size[65536], r_tp[65536], r_cat[65536];
static uint8_t label_of[65536], inst_cat[65536];
static int tables_seed = -1;

static void fuzz_fused(const input *in, dims d)
{
    unsigned flags = byte_at(in, 0), seed = byte_at(in, 8);
    int with_inst = (flags & 32) != 0, raw_filters = (flags & 128) != 0;
    size_t s8 = 0, t8 = 0, s16 = 0, t16 = 0, j, bad_file = 9, bad_row = 9, rows;
    int ok8 = segpng_image_bytes(d.h, d.w, 1, &s8, &t8);
    int ok16 = segpng_image_bytes(d.h, d.w, 2, &s16, &t16);
    size_t glen = buffer_len(in, ok8, t8, flags & 8);
    size_t plen = buffer_len(in, ok8, t8, 0);
    size_t ilen = with_inst ? buffer_len(in, ok16, t16, flags & 16) : 0;
    int exact = ok8 && glen == t8 && plen == t8 && (!with_inst || (ok16 && ilen == t16));
    uint8_t *graw = payload_bytes(in, 0, glen, exact ? s8 : 0, raw_filters);
    uint8_t *praw = payload_bytes(in, 7, plen, exact ? s8 : 0, raw_filters);
    uint8_t *iraw = payload_bytes(in, 13, ilen, exact ? s16 : 0, raw_filters);
    uint8_t pred_lut[256], category_of[256];
    int64_t offset = seed < 128 ? 1000 : (int64_t)seed * 97 - 20000;
    int status;
    for (j = 0; j < 256; j++) {
        pred_lut[j] = (uint8_t)(j * (2 * seed + 1) + seed);
        category_of[j] = (uint8_t)((j * 7 + seed) % 9);
    }
    if (tables_seed != (int)seed) { /* 65536 entries: only when the seed changes */
        for (j = 0; j < 65536; j++) {
            label_of[j] = (uint8_t)(j / 1000);
            inst_cat[j] = category_of[label_of[j]];
        }
        tables_seed = (int)seed;
    }
    status = segpng_count_cityscapes_rows(graw, glen, praw, plen, with_inst ? iraw : NULL, ilen,
                                          d.h, d.w, with_inst, offset, pred_lut, 256,
                                          category_of, 256, label_of, 65536, inst_cat, 65536,
                                          k_hist, 65536, k_size, 65536, k_tp, 65536, k_cat,
                                          65536, &bad_file, &bad_row);
    if (!exact) {
        CHECK(status == SEGPNG_BAD_LENGTH);
    } else {
        uint8_t *g = malloc(t8 ? t8 : 1), *p = malloc(t8 ? t8 : 1), *k = malloc(t16 ? t16 : 1);
        size_t gd, pd, kd = d.h;
        CHECK(g && p && k);
        gd = ref_unfilter(graw, d.h, d.w, 1, g);
        pd = ref_unfilter(praw, d.h, d.w, 1, p);
        if (with_inst)
            kd = ref_unfilter(iraw, d.h, 2 * d.w, 2, k);
        /* the first bad row, files in the order labelIds, prediction, instanceIds */
        rows = gd < pd ? gd : pd;
        rows = rows < kd ? rows : kd;
        if (rows == d.h) {
            CHECK(status == SEGPNG_OK);
        } else {
            CHECK(status == SEGPNG_BAD_FILTER && bad_row == rows);
            CHECK(bad_file == (gd == rows ? 0u : pd == rows ? 1u : 2u));
        }
        /* rows above a bad one are counted */
        for (j = 0; j < rows * d.w; j++) {
            unsigned gv = g[j], pv = p[j], kv = with_inst ? ref_pixel(k, j, 2) : 0;
            r_hist[gv << 8 | pv]++;
            if ((int64_t)kv > offset) {
                unsigned q = pred_lut[pv];
                r_size[kv]++;
                r_tp[kv] += q == label_of[kv];
                r_cat[kv] += category_of[q] == inst_cat[kv];
            }
        }
        CHECK(memcmp(k_hist, r_hist, sizeof k_hist) == 0);
        CHECK(memcmp(k_size, r_size, sizeof k_size) == 0);
        CHECK(memcmp(k_tp, r_tp, sizeof k_tp) == 0);
        CHECK(memcmp(k_cat, r_cat, sizeof k_cat) == 0);
        for (j = 0; j < rows * d.w; j++) { /* back to zero: only what was touched */
            unsigned kv = with_inst ? ref_pixel(k, j, 2) : 0;
            k_hist[g[j] << 8 | p[j]] = r_hist[g[j] << 8 | p[j]] = 0;
            k_size[kv] = r_size[kv] = k_tp[kv] = r_tp[kv] = k_cat[kv] = r_cat[kv] = 0;
        }
        free(g);
        free(p);
        free(k);
    }
    free(graw);
    free(praw);
    free(iraw);
}

/* ----------------------------------------------------------------------- the mask pass */

static void fuzz_mask(const input *in, dims d)
{
    unsigned flags = byte_at(in, 0), wide = (flags & 64) != 0;
    size_t stride = 0, total = 0, pixels = 0, j, y, bad = 0;
    int ok = segpng_image_bytes(d.h, d.w, 1, &stride, &total);
    int pix_ok = segpng_mul(d.h, d.w, &pixels);
    size_t raw_len = buffer_len(in, ok, total, flags & 8);
    size_t ids_len = buffer_len(in, pix_ok, pixels, flags & 16);
    size_t index_len = byte_at(in, 6), counts_len = byte_at(in, 7) % 16;
    int clamp = (byte_at(in, 7) & 128) != 0 && counts_len > 0;
    int exact = ok && pix_ok && raw_len == total && ids_len == pixels
                && d.h <= (size_t)INT64_MAX && d.w <= (size_t)INT64_MAX; /* the box's type */
    uint8_t *raw = payload_bytes(in, 3, raw_len, exact ? stride : 0, flags & 128);
    uint8_t *idb = payload_bytes(in, 11, ids_len * (wide ? 2 : 1), 0, 1);
    uint8_t *ixb = payload_bytes(in, 17, index_len * 4, 0, 1);
    int32_t *index = malloc(index_len ? index_len * sizeof(int32_t) : 1);
    int64_t *counts = calloc(counts_len ? counts_len : 1, sizeof(int64_t));
    int64_t ref[16] = {0}, box[4] = {7, 7, 7, 7};
    int status;
    CHECK(index != NULL && counts != NULL);
    for (j = 0; j < index_len; j++) {
        int32_t v;
        memcpy(&v, ixb + 4 * j, 4);
        index[j] = clamp ? (int32_t)((uint32_t)v % counts_len) : v;
    }
    if (wide)
        status = segpng_mask_overlaps_u16(raw, raw_len, d.h, d.w, (const uint16_t *)(void *)idb,
                                          ids_len, index, index_len, counts, counts_len, &bad,
                                          box);
    else
        status = segpng_mask_overlaps_u8(raw, raw_len, d.h, d.w, idb, ids_len, index,
                                         index_len, counts, counts_len, &bad, box);
    if (!exact) {
        CHECK(status == SEGPNG_BAD_LENGTH);
    } else {
        uint8_t *img = malloc(total ? total : 1);
        size_t done;
        int want = SEGPNG_OK;
        int64_t top = -1, bottom = 0, left = (int64_t)d.w, right = 0;
        CHECK(img != NULL);
        done = ref_unfilter(raw, d.h, d.w, 1, img);
        for (y = 0; y < d.h && want == SEGPNG_OK; y++) {
            if (y == done) {
                want = SEGPNG_BAD_FILTER;
                break;
            }
            for (j = 0; j < d.w; j++) {
                size_t p = y * d.w + j, v;
                int32_t r;
                if (img[p] == 0)
                    continue;
                v = wide ? ((const uint16_t *)(void *)idb)[p] : idb[p];
                if (v >= index_len || (r = index[v]) < 0 || (size_t)r >= counts_len) {
                    want = SEGPNG_BAD_INDEX;
                    break;
                }
                ref[r]++;
                if (top < 0)
                    top = (int64_t)y;
                bottom = (int64_t)y + 1;
                if ((int64_t)j < left)
                    left = (int64_t)j;
                if ((int64_t)j + 1 > right)
                    right = (int64_t)j + 1;
            }
        }
        CHECK(status == want);
        if (want == SEGPNG_BAD_FILTER)
            CHECK(bad == done);
        if (want != SEGPNG_BAD_INDEX) /* (a bad index stops the kernel within a run) */
            for (j = 0; j < counts_len; j++)
                CHECK(counts[j] == ref[j]);
        if (want == SEGPNG_OK) {
            CHECK(box[0] == top && box[1] == bottom);
            CHECK(box[2] == left && box[3] == right);
        }
        free(img);
    }
    free(raw);
    free(idb);
    free(ixb);
    free(index);
    free(counts);
}

/* ----------------------------------------------------------------------- the chunk walk */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void fuzz_walk(const input *in)
{
    static const uint8_t SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    size_t m = in->size > 10 ? in->size - 10 : 0, len = 8 + m, pos;
    uint8_t *file = malloc(len);
    segpng_walk walk;
    int status;
    CHECK(file != NULL);
    memcpy(file, SIG, 8);
    if (m)
        memcpy(file + 8, in->data + 10, m);
    if (byte_at(in, 9) & 2) { /* recompute the CRCs the length fields reach */
        for (pos = 8; len - pos >= 12;) {
            uint32_t n = be32(file + pos), crc;
            if ((uint64_t)(len - pos) < 12u + (uint64_t)n)
                break;
            crc = segpng_crc32(0, file + pos + 4, 4 + (size_t)n);
            file[pos + 8 + n] = (uint8_t)(crc >> 24);
            file[pos + 9 + n] = (uint8_t)(crc >> 16);
            file[pos + 10 + n] = (uint8_t)(crc >> 8);
            file[pos + 11 + n] = (uint8_t)crc;
            pos += 12 + (size_t)n;
        }
    }
    status = segpng_walk_chunks(file, len, &walk);
    CHECK(status >= SEGPNG_WALK_OK && status <= SEGPNG_WALK_BAD_METHOD);
    CHECK(status != SEGPNG_WALK_SIGNATURE);
    CHECK(walk.pos <= len);
    if (status == SEGPNG_WALK_OK) {
        uint8_t *idat;
        size_t bad = 0, bpp, stride, total;
        CHECK(walk.have_ihdr && walk.idat_count > 0);
        CHECK(walk.idat_start < walk.idat_end && walk.idat_end <= len);
        CHECK(walk.idat_bytes + 12 * (uint64_t)walk.idat_count
              == (uint64_t)(walk.idat_end - walk.idat_start));
        idat = malloc(walk.idat_bytes ? (size_t)walk.idat_bytes : 1);
        CHECK(idat != NULL);
        CHECK(segpng_gather_idat(file, len, walk.idat_start, walk.idat_end, idat,
                                 (size_t)walk.idat_bytes) == SEGPNG_WALK_OK);
        /* a wrong total or span is refused */
        CHECK(segpng_gather_idat(file, len, walk.idat_start, walk.idat_end, idat,
                                 (size_t)walk.idat_bytes / 2) == SEGPNG_WALK_BAD_ARGUMENT
              || walk.idat_bytes == 0);
        CHECK(segpng_gather_idat(file, len, walk.idat_start + 1, walk.idat_end, idat,
                                 (size_t)walk.idat_bytes) == SEGPNG_WALK_BAD_ARGUMENT);
        /* the gathered bytes read as inflated data of the header's size (they are not, but
         * the lengths are what matters here): an 8-bit grey decode of them */
        bpp = walk.bit_depth == 16 ? 2 : 1;
        if (segpng_image_bytes(walk.height, walk.width, bpp, &stride, &total)
                && total == walk.idat_bytes && (uint64_t)walk.width * walk.height <= (1u << 18)) {
            uint8_t *out = malloc((size_t)walk.width * walk.height * bpp);
            CHECK(out != NULL);
            if (bpp == 1)
                status = segpng_unfilter_gray8(idat, total, out, (size_t)walk.width * walk.height,
                                               walk.height, walk.width, &bad);
            else
                status = segpng_unfilter_gray16(idat, total, (uint16_t *)(void *)out,
                                                (size_t)walk.width * walk.height, walk.height,
                                                walk.width, &bad);
            CHECK(status == SEGPNG_OK || status == SEGPNG_BAD_FILTER);
            free(out);
        }
        free(idat);
    }
    free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in;
    dims d;
    in.data = data;
    in.size = size;
    d = get_dims(&in);
    fuzz_unfilter(&in, d);
    fuzz_fused(&in, d);
    fuzz_mask(&in, d);
    if (byte_at(&in, 9) & 1)
        fuzz_walk(&in);
    return 0;
}
