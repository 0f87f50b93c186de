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
 *               every chunk first (so that the walk goes past the CRC check); bit 2: the
 *               streaming inflater (png_inflate.h) and the streamed mask passes, bits 3-4 its
 *               stream: 0 the payload, 1 the payload after a zlib header, 2 a sparse image made
 *               from the payload and deflated here (fixed codes and stored blocks), 3 the same
 *               image deflated by zlib (level, strategy and window from bytes 6 and 8) where
 *               built with -DSEGPNG_FUZZ_ZLIB (else as 2); bit 5: one bit of that stream
 *               flipped (its position from bytes 5-6); bit 6: in mode 2, a match from before
 *               the start of the output (refused); with bit 2 of byte 0 (huge) the image
 *               has up to 368 rows of up to 1500 bytes (the window slides)
 *   bytes 10-   the payload: image bytes (used cyclically), ids, index values, chunks
 *
 * With -DSEGPNG_FUZZ_ZLIB (link with -lz) the inflater is checked against zlib's inflate on
 * every stream: it must give zlib's bytes, or refuse where zlib refuses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "png_chunks.h"
#include "png_filters.h"
#include "png_inflate.h"
#include "png_passes.h"

#ifdef SEGPNG_FUZZ_ZLIB
#include <zlib.h>
#endif

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

/* The mask pass's result on the inflated rows raw (h x w) against the reference decoder of
 * this file: its status, counts (unless a bad index stopped it within a run), box, bad row. */
static void ref_mask_check(const uint8_t *raw, size_t h, size_t w, int wide, const uint8_t *idb,
                           const int32_t *index, size_t index_len, size_t counts_len,
                           int status, const int64_t *counts, const int64_t *box, size_t bad)
{
    uint8_t *img = malloc(h * w != 0 ? h * w : 1);
    int64_t ref[16] = {0}, top = -1, bottom = 0, left = (int64_t)w, right = 0;
    size_t done, y, j;
    int want = SEGPNG_OK;
    CHECK(img != NULL);
    done = ref_unfilter(raw, h, w, 1, img);
    for (y = 0; y < h && want == SEGPNG_OK; y++) {
        if (y == done) {
            want = SEGPNG_BAD_FILTER;
            break;
        }
        for (j = 0; j < w; j++) {
            size_t p = y * w + j, v;
            int32_t r;
            if (img[p] == 0)
                continue;
            v = wide ? ((const uint16_t *)(const void *)idb)[p] : idb[p];
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
    if (want != SEGPNG_BAD_INDEX)
        for (j = 0; j < counts_len; j++)
            CHECK(counts[j] == ref[j]);
    if (want == SEGPNG_OK)
        CHECK(box[0] == top && box[1] == bottom && box[2] == left && box[3] == right);
    free(img);
}

static void fuzz_mask(const input *in, dims d)
{
    unsigned flags = byte_at(in, 0), wide = (flags & 64) != 0;
    size_t stride = 0, total = 0, pixels = 0, j, bad = 0;
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
    int64_t box[4] = {7, 7, 7, 7};
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
        ref_mask_check(raw, d.h, d.w, wide, idb, index, index_len, counts_len, status, counts,
                       box, bad);
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

/* ------------------------------------------------------------ the streaming inflater */

/* A deflate writer (RFC 1951) for the fuzz images, independent of the inflater under test:
 * fields from their least significant bit, Huffman codes from their most significant. */
typedef struct {
    uint8_t *buf;
    size_t cap, len;
    uint64_t acc;
    unsigned n;
} bitw;

static void bw_put(bitw *b, uint32_t v, unsigned n)
{
    b->acc |= (uint64_t)v << b->n;
    b->n += n;
    while (b->n >= 8) {
        CHECK(b->len < b->cap);
        b->buf[b->len++] = (uint8_t)b->acc;
        b->acc >>= 8;
        b->n -= 8;
    }
}

static void bw_code(bitw *b, uint32_t code, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++)
        bw_put(b, (code >> (n - 1 - i)) & 1u, 1);
}

static void bw_align(bitw *b)
{
    if (b->n % 8)
        bw_put(b, 0, 8 - b->n % 8);
}

static void fixed_sym(bitw *b, unsigned sym)
{
    if (sym < 144)
        bw_code(b, 0x30 + sym, 8);
    else if (sym < 256)
        bw_code(b, 0x190 + sym - 144, 9);
    else if (sym < 280)
        bw_code(b, sym - 256, 7);
    else
        bw_code(b, 0xC0 + sym - 280, 8);
}

static void fixed_match(bitw *b, unsigned len, unsigned dist)
{
    static const unsigned LB[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                    31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static const unsigned LE[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                    2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static const unsigned DB[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                    33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
    unsigned k = 28, j = 29;
    while (LB[k] > len)
        k--;
    while (DB[j] > dist)
        j--;
    fixed_sym(b, 257 + k);
    bw_put(b, len - LB[k], LE[k]);
    bw_code(b, j, 5);
    bw_put(b, dist - DB[j], j < 4 ? 0 : j / 2 - 1);
}

/* img[0:n) as a zlib stream into *out (malloc'ed; its length returned): blocks of fixed codes
 * (matches of the byte before, of the row above and of about 32 KiB back, greedy) and stored
 * blocks, cut where the payload says. With bit 6 of byte 9, a match of 3 bytes from before
 * the start of the output replaces 3 bytes (if a fixed block reaches the place the payload
 * names): *reached says whether it was written. */
static size_t deflate_here(const input *in, const uint8_t *img, size_t n, size_t stride,
                           uint8_t **out, int *reached)
{
    bitw b;
    size_t i = 0, k = 0, j, far = 32768 - byte_at(in, 8) % 64;
    /* with bit 6 of byte 9: one match reaches before the start of the output, at bad */
    size_t bad = byte_at(in, 9) & 64 ? (byte_at(in, 5) | byte_at(in, 6) << 8) % (n + 1) : n;
    uint32_t a = 1, s2 = 0;
    const uint8_t *p = in->data + (in->size > 10 ? 10 : in->size);
    size_t m = in->size > 10 ? in->size - 10 : 0;
    b.cap = 7 * n + 64; /* a stored block of one byte: 6 bytes */
    b.buf = malloc(b.cap);
    b.len = 0;
    b.acc = 0;
    b.n = 0;
    CHECK(b.buf != NULL);
    bw_put(&b, 0x78, 8);
    bw_put(&b, 0x01, 8);
    do {
        unsigned choice = m ? p[k++ % m] : 0;
        size_t seg = 1 + (size_t)choice * 2003 % (n / 2 + 64), stop;
        stop = n - i < seg ? n : i + seg;
        if (stop == n)
            seg = n - i;
        if (choice % 4 == 3 && seg <= 65535) { /* stored */
            bw_put(&b, stop == n, 1);
            bw_put(&b, 0, 2);
            bw_align(&b);
            bw_put(&b, (uint32_t)seg, 16);
            bw_put(&b, (uint32_t)(~seg & 0xFFFFu), 16);
            for (; i < stop; i++)
                bw_put(&b, img[i], 8);
            continue;
        }
        bw_put(&b, stop == n, 1);
        bw_put(&b, 1, 2);
        while (i < stop) {
            size_t run = 0, up = 0, back = 0;
            if (i >= 1)
                while (run < 258 && i + run < stop && img[i + run] == img[i - 1])
                    run++;
            if (i >= stride && stride <= 32768)
                while (up < 258 && i + up < stop && img[i + up] == img[i + up - stride])
                    up++;
            if (i >= far) /* as far back as deflate reaches: across slides of the window */
                while (back < 258 && i + back < stop && img[i + back] == img[i + back - far])
                    back++;
            if (i == bad && stop - i >= 3 && i + 3 <= 32768) {
                fixed_match(&b, 3, (unsigned)(i + 1 + byte_at(in, 7) % 3));
                i += 3;
                *reached = 1;
            } else if (back >= 3 && back >= run && back >= up) {
                fixed_match(&b, (unsigned)back, (unsigned)far);
                i += back;
            } else if (run >= 3 && run >= up) {
                fixed_match(&b, (unsigned)run, 1);
                i += run;
            } else if (up >= 3) {
                fixed_match(&b, (unsigned)up, (unsigned)stride);
                i += up;
            } else {
                fixed_sym(&b, img[i++]);
            }
        }
        fixed_sym(&b, 256);
    } while (i < n);
    bw_align(&b);
    for (j = 0; j < n; j++) { /* Adler-32, byte by byte */
        a = (a + img[j]) % 65521;
        s2 = (s2 + a) % 65521;
    }
    bw_put(&b, s2 >> 8, 8);
    bw_put(&b, s2 & 0xFF, 8);
    bw_put(&b, a >> 8, 8);
    bw_put(&b, a & 0xFF, 8);
    *out = b.buf;
    return b.len;
}

typedef struct {
    uint8_t *buf;
    size_t stride, rows, next;
} rows_seen;

static int take_row(void *ctx, size_t y, const uint8_t *row, size_t lo, size_t hi)
{
    rows_seen *r = ctx;
    size_t i;
    CHECK(y == r->next && y < r->rows && lo <= hi && hi <= r->stride - 1);
    memcpy(r->buf + y * r->stride, row, r->stride);
    for (i = 1; i < r->stride; i++) /* zeros outside the span the inflater names */
        if (i - 1 < lo || i - 1 >= hi)
            CHECK(row[i] == 0);
    r->next++;
    return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A PNG file: 8-bit grey, h x w, the stream in two IDAT chunks cut at `cut`. */
static uint8_t *png_file(const uint8_t *stream, size_t len, size_t h, size_t w, size_t cut,
                         size_t *file_len)
{
    static const uint8_t SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    size_t n = 8 + 25 + (12 + cut) + (12 + len - cut) + 12, pos = 8, part;
    uint8_t *f = malloc(n);
    CHECK(f != NULL && cut <= len);
    memcpy(f, SIG, 8);
    put_be32(f + pos, 13);
    memcpy(f + pos + 4, "IHDR", 4);
    put_be32(f + pos + 8, (uint32_t)w);
    put_be32(f + pos + 12, (uint32_t)h);
    f[pos + 16] = 8;
    f[pos + 17] = f[pos + 18] = f[pos + 19] = f[pos + 20] = 0;
    put_be32(f + pos + 21, segpng_crc32(0, f + pos + 4, 17));
    pos += 25;
    for (part = 0; part < 2; part++) {
        size_t k = part ? len - cut : cut;
        put_be32(f + pos, (uint32_t)k);
        memcpy(f + pos + 4, "IDAT", 4);
        if (k)
            memcpy(f + pos + 8, stream + (part ? cut : 0), k);
        put_be32(f + pos + 8 + k, segpng_crc32(0, f + pos + 4, 4 + k));
        pos += 12 + k;
    }
    put_be32(f + pos, 0);
    memcpy(f + pos + 4, "IEND", 4);
    put_be32(f + pos + 8, segpng_crc32(0, f + pos + 4, 4));
    *file_len = n;
    return f;
}

static void fuzz_inflate(const input *in)
{
    unsigned flags = byte_at(in, 0), mode = (byte_at(in, 9) >> 3) & 3;
    int wide = (flags & 64) != 0, huge = (flags & 4) != 0, status, inflated, one, why = 0,
        why2 = 0;
    size_t h = (byte_at(in, 1) | byte_at(in, 2) << 8) % MAX_H;
    size_t w = (byte_at(in, 3) | byte_at(in, 4) << 8) % (huge ? 1500 : MAX_W);
    size_t stride = w + 1, total, len = 0, i, bad = 0, bad2 = 0, file_len;
    size_t index_len = byte_at(in, 6), counts_len = 1 + byte_at(in, 7) % 15;
    const uint8_t *p = in->data + (in->size > 10 ? 10 : in->size);
    size_t m = in->size > 10 ? in->size - 10 : 0;
    uint8_t *stream = NULL, *img = NULL, *got, *idb, *file;
    int32_t *index;
    int64_t c1[16] = {0}, c2[16] = {0}, c3[16] = {0}, box1[4] = {7, 7, 7, 7}, box2[4],
            box3[4];
    rows_seen seen;
    int zlib_ok = -1; /* -1: no reference; else whether zlib accepts */
    int before_start = 0; /* a match before the start of the output was written */
    if (huge)
        h *= 16;
    total = h * stride;
    if (mode == 0) {
        stream = malloc(m ? m : 1);
        CHECK(stream != NULL);
        if (m)
            memcpy(stream, p, m);
        len = m;
    } else if (mode == 1) {
        stream = malloc(m + 2);
        CHECK(stream != NULL);
        stream[0] = 0x78;
        stream[1] = 0x9C;
        if (m)
            memcpy(stream + 2, p, m);
        len = m + 2;
    } else { /* a sparse mask image: rows of zeros, runs and bytes from the payload */
        size_t c0 = (byte_at(in, 8) * 7u) % (w + 1);
        img = payload_bytes(in, 5, total, stride, flags & 128);
        for (i = 0; i < total; i++) { /* a band of 255 in two rows of three (of a length */
            size_t c = i % stride, y = i / stride;  /* that changes), else zeros, and bytes */
            size_t c1 = c0 + (w - c0) * (1 + y % 4) / 5;  /* of the payload at its start */
            if (c == 0 && y % 3 == 0 && !(flags & 128))
                img[i] = 0; /* the rows between the bands: None */
            else if (c != 0 && (c + 4 < c0 || c >= c0 + 4 || img[i] % 4 != 0))
                img[i] = y % 3 != 0 && c > c0 && c <= c1 ? 255 : 0;
        }
        for (i = 40000; i < total; i++) /* some bytes repeat what was 32 KiB back */
            if ((i / 4096) % 3 == 0) {
                img[i] = img[i - 32768 + byte_at(in, 8) % 64];
                if (i % stride == 0 && !(flags & 128))
                    img[i] %= 5; /* (filter types stay valid) */
            }
#ifdef SEGPNG_FUZZ_ZLIB
        if (mode == 3) {
            z_stream z;
            int level = byte_at(in, 8) % 10, strategy = byte_at(in, 8) / 10 % 5;
            int wbits = 9 + byte_at(in, 6) % 7;
            uLong cap;
            memset(&z, 0, sizeof z);
            CHECK(deflateInit2(&z, level, Z_DEFLATED, wbits, 1 + byte_at(in, 6) % 9, strategy)
                  == Z_OK);
            cap = deflateBound(&z, (uLong)total) + 16;
            stream = malloc(cap);
            CHECK(stream != NULL);
            z.next_in = img;
            z.avail_in = (uInt)total;
            z.next_out = stream;
            z.avail_out = (uInt)cap;
            CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
            len = cap - z.avail_out;
            deflateEnd(&z);
        }
#endif
        if (stream == NULL)
            len = deflate_here(in, img, total, stride, &stream, &before_start);
    }
    if ((byte_at(in, 9) & 32) && len) { /* one bit flipped */
        size_t at = (byte_at(in, 5) | byte_at(in, 6) << 8) % len;
        stream[at] ^= (uint8_t)(1u << (byte_at(in, 7) % 8));
    }
    /* the inflater alone, each row copied out as it comes */
    got = calloc(total ? total : 1, 1);
    CHECK(got != NULL);
    seen.buf = got;
    seen.stride = stride;
    seen.rows = h;
    seen.next = 0;
    status = segpng_inflate_rows(stream, len, stride, h, take_row, &seen, NULL);
    CHECK(status == SEGPNG_INFLATE_OK || (status <= SEGPNG_INFLATE_BAD_HEADER
                                          && status >= SEGPNG_INFLATE_BAD_ADLER));
    if (status == SEGPNG_INFLATE_OK)
        CHECK(seen.next == h);
    inflated = status;
#ifdef SEGPNG_FUZZ_ZLIB
    {
        z_stream z;
        uint8_t *ref = malloc(total + 1);
        int r;
        CHECK(ref != NULL);
        memset(&z, 0, sizeof z);
        CHECK(inflateInit(&z) == Z_OK);
        z.next_in = stream;
        z.avail_in = (uInt)len;
        z.next_out = ref;
        z.avail_out = (uInt)(total + 1);
        r = inflate(&z, Z_FINISH);
        zlib_ok = r == Z_STREAM_END && z.avail_out == 1;
        inflateEnd(&z);
        CHECK((status == SEGPNG_INFLATE_OK) == zlib_ok);
        if (zlib_ok)
            CHECK(total == 0 || memcmp(got, ref, total) == 0);
        free(ref);
    }
#endif
    if (img != NULL && !(byte_at(in, 9) & 32)) { /* an image deflated as it is */
        if (before_start) {
            CHECK(status == SEGPNG_INFLATE_BAD_DATA);
        } else {
            CHECK(status == SEGPNG_INFLATE_OK);
            CHECK(total == 0 || memcmp(got, img, total) == 0);
        }
    }
    (void)zlib_ok;
    /* the streamed mask pass against the whole pass over the rows the inflater gave */
    idb = payload_bytes(in, 11, h * w * (wide ? 2 : 1), 0, 1);
    index = malloc(index_len ? index_len * sizeof(int32_t) : 1);
    CHECK(index != NULL);
    for (i = 0; i < index_len; i++)
        index[i] = (int32_t)((m ? p[(i * 7) % m] : 0) % counts_len);
    if (wide)
        status = segpng_mask_overlaps_stream_u16(stream, len, h, w, (const uint16_t *)(void *)idb,
                                                 h * w, index, index_len, c1, counts_len, &bad,
                                                 box1, &why);
    else
        status = segpng_mask_overlaps_stream_u8(stream, len, h, w, idb, h * w, index, index_len,
                                                c1, counts_len, &bad, box1, &why);
    if (inflated == SEGPNG_INFLATE_OK) {
        int whole;
        if (wide)
            whole = segpng_mask_overlaps_u16(got, total, h, w, (const uint16_t *)(void *)idb,
                                             h * w, index, index_len, c2, counts_len, &bad2,
                                             box2);
        else
            whole = segpng_mask_overlaps_u8(got, total, h, w, idb, h * w, index, index_len, c2,
                                            counts_len, &bad2, box2);
        CHECK(status == whole);
        if (whole == SEGPNG_OK)
            CHECK(memcmp(box1, box2, sizeof box1) == 0);
        if (whole == SEGPNG_BAD_FILTER)
            CHECK(bad == bad2);
        if (whole != SEGPNG_BAD_INDEX) /* (a bad index stops the passes within a run) */
            CHECK(memcmp(c1, c2, sizeof c1) == 0);
        ref_mask_check(got, h, w, wide, idb, index, index_len, counts_len, status, c1, box1,
                       bad);
    } else {
        CHECK(status == SEGPNG_BAD_STREAM && why == inflated);
    }
    /* the same in a PNG file, in one call */
    file = png_file(stream, len, h, w, len ? (byte_at(in, 8) * 13) % (len + 1) : 0, &file_len);
    if (wide)
        one = segpng_mask_overlaps_png_u16(file, file_len, h, w, (const uint16_t *)(void *)idb,
                                           h * w, index, index_len, c3, counts_len, &bad2, box3,
                                           &why2);
    else
        one = segpng_mask_overlaps_png_u8(file, file_len, h, w, idb, h * w, index, index_len,
                                          c3, counts_len, &bad2, box3, &why2);
    if (h == 0 || w == 0 || (uint64_t)len * 1040 + 1024 < (uint64_t)total) {
        CHECK(one == SEGPNG_NOT_FAST);
    } else {
        CHECK(one == status);
        if (status == SEGPNG_BAD_STREAM)
            CHECK(why2 == why);
        if (status == SEGPNG_OK)
            CHECK(memcmp(box1, box3, sizeof box1) == 0 && memcmp(c1, c3, sizeof c1) == 0);
    }
    free(file);
    free(idb);
    free(index);
    free(got);
    free(img);
    free(stream);
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
    if (byte_at(&in, 9) & 4)
        fuzz_inflate(&in);
    return 0;
}
