/* PNG row un-filtering (ISO/IEC 15948, section 9), straight into label arrays.
 *
 * Each row of a PNG's inflated image data is one filter-type byte followed by the row's
 * filtered bytes; bpp is the number of bytes per complete pixel. With x the byte being
 * reconstructed, a the reconstructed byte bpp to its left (0 before the row start), b the byte
 * above (0 on the first row) and c the byte above a:
 *
 *   type 0 None     x
 *   type 1 Sub      x + a
 *   type 2 Up       x + b
 *   type 3 Average  x + floor((a + b) / 2)   (the sum without overflow)
 *   type 4 Paeth    x + paeth(a, b, c)
 *
 * all modulo 256. The filters work on each byte of a pixel separately (a, b and c are bytes of
 * the same channel), so the channels of a pixel never mix: an RGBA row's alpha bytes do not
 * change its red, green and blue bytes, and the RGB(A) row functions skip them.
 *
 * The static inline row functions below trust their arguments (a filter type 0..4, rows of the
 * stated lengths, prev == NULL for the first row); the whole-image functions (png_filters.c)
 * check every length against the header before any access and are what callers use:
 *
 *   8-bit grey or palette   bpp 1 -> uint8_t, the stored byte
 *   16-bit grey             bpp 2 -> uint16_t, native byte order (PNG samples are big-endian)
 *   8-bit RGB               bpp 3 -> uint32_t id R | G << 8 | B << 16
 *   8-bit RGBA              bpp 4 -> uint32_t id R | G << 8 | B << 16 (alpha dropped)
 *
 * Speed: the left neighbour stays in a register; Up and None rows are plain loops the compiler
 * vectorises; a Paeth pixel whose filtered bytes are 0 and whose b equals c reconstructs to a
 * (paeth(a, b, b) == a), the common case inside a label region, so it skips the predictor.
 * Plain C99, no Python API.
 */
#ifndef SEGEVAL_PNG_FILTERS_H
#define SEGEVAL_PNG_FILTERS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A condition that is rarely true: a hint that keeps the Paeth shortcut a branch (gcc would
 * otherwise compute the predictor for every pixel with conditional moves: measured 30% slower
 * on label maps, where almost every pixel takes the shortcut). */
#if defined(__GNUC__) || defined(__clang__)
#define SEGPNG_RARE(x) __builtin_expect(!!(x), 0)
#else
#define SEGPNG_RARE(x) (x)
#endif

/* Status codes of every native PNG function. */
#define SEGPNG_OK 0
#define SEGPNG_BAD_FILTER 1    /* a row's filter-type byte is not 0..4 (*bad_row says which) */
#define SEGPNG_BAD_LENGTH (-1) /* a length does not match the header (h, w, bpp): nothing read */
#define SEGPNG_BAD_INDEX (-2)  /* a value would index outside a table (mask pass): stopped */
#define SEGPNG_NO_MEMORY (-3)  /* a scratch row buffer could not be allocated */

/* a * b into *r; 0 (and *r untouched) when the product does not fit a size_t. */
static inline int segpng_mul(size_t a, size_t b, size_t *r)
{
    if (b != 0 && a > SIZE_MAX / b)
        return 0;
    *r = a * b;
    return 1;
}

/* The bytes of the inflated image data of an h x w image of bpp bytes per pixel,
 * h * (w * bpp + 1), into *total (and the row stride w * bpp + 1 into *stride); 0 on
 * overflow. */
static inline int segpng_image_bytes(size_t h, size_t w, size_t bpp, size_t *stride,
                                     size_t *total)
{
    size_t row;
    if (!segpng_mul(w, bpp, &row) || row == SIZE_MAX)
        return 0;
    *stride = row + 1;
    return segpng_mul(h, row + 1, total);
}

/* The Paeth predictor: of a, b and c, the one nearest p = a + b - c (ties: a, then b). With
 * pa = |p - a| = |b - c|, pb = |p - b| = |a - c|, pc = |p - c| = |a + b - 2c|, written as two
 * selections that compile to conditional moves. */
static inline int segpng_paeth(int a, int b, int c)
{
    int pa = b - c, pb = a - c, pc;
    pc = pa + pb;
    pa = pa < 0 ? -pa : pa;
    pb = pb < 0 ? -pb : pb;
    pc = pc < 0 ? -pc : pc;
    if (pb < pa) {
        pa = pb;
        a = b;
    }
    return pc < pa ? c : a;
}

/* The filter type that a row has in effect when the row above is zeros (the first row, prev ==
 * NULL): b = c = 0, so Up is None and Paeth is Sub; Average still adds a / 2 (each caller's
 * own loop). */
static inline unsigned segpng_first_row_filter(unsigned ft)
{
    return ft == 2 ? 0u : ft == 4 ? 1u : ft;
}

/* Word-at-a-time tests of the runs that label maps are made of: 8 filtered bytes that are all
 * zero, and a row above that does not change over them (so Sub and Paeth only repeat the left
 * pixel: x + paeth(a, b, b) == a when x is 0). Unaligned loads through memcpy. */
static inline uint64_t segpng_word(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* One row of n one-byte pixels: x the filtered bytes, prev the reconstructed row above
 * (NULL for the first row: zeros), cur the output. Sub and Paeth rows skip, 8 pixels at a
 * time, the spans where they only repeat the left pixel. */
static inline void segpng_row_u8(unsigned ft, const uint8_t *restrict x,
                                 const uint8_t *restrict prev, uint8_t *restrict cur, size_t n)
{
    size_t i;
    unsigned a = 0, c = 0;
    if (prev == NULL) {
        ft = segpng_first_row_filter(ft);
        if (ft == 3) {
            for (i = 0; i < n; i++) {
                a = (x[i] + (a >> 1)) & 0xFFu;
                cur[i] = (uint8_t)a;
            }
            return;
        }
    }
    switch (ft) {
    case 0:
        for (i = 0; i < n; i++)
            cur[i] = x[i];
        break;
    case 1:
        for (i = 0; i + 8 <= n; i += 8) {
            size_t j;
            if (segpng_word(x + i) == 0) {
                memset(cur + i, (int)a, 8);
                continue;
            }
            for (j = i; j < i + 8; j++) {
                a = (a + x[j]) & 0xFFu;
                cur[j] = (uint8_t)a;
            }
        }
        for (; i < n; i++) {
            a = (a + x[i]) & 0xFFu;
            cur[i] = (uint8_t)a;
        }
        break;
    case 2:
        for (i = 0; i < n; i++)
            cur[i] = (uint8_t)(x[i] + prev[i]);
        break;
    case 3:
        for (i = 0; i < n; i++) {
            a = (x[i] + ((a + prev[i]) >> 1)) & 0xFFu;
            cur[i] = (uint8_t)a;
        }
        break;
    default:
        /* c is prev[i - 1] (0 before the row). A pixel of zero x under b == c keeps a
         * (paeth(a, b, b) == a), and so does every pixel after it while x stays zero and the
         * row above does not change: that span is filled a word (8 pixels) at a time. */
        for (i = 0; i < n; i++) {
            unsigned xx = x[i], bb = prev[i];
            if (xx == 0 && bb == c) {
                size_t j = i + 1;
                uint64_t fill = (uint64_t)a * UINT64_C(0x0101010101010101);
                cur[i] = (uint8_t)a;
                while (j + 8 <= n && (segpng_word(x + j)
                                      | (segpng_word(prev + j) ^ segpng_word(prev + j - 1))) == 0) {
                    memcpy(cur + j, &fill, 8);
                    j += 8;
                }
                c = prev[j - 1];
                i = j - 1;
                continue;
            }
            a = (xx + (unsigned)segpng_paeth((int)a, (int)bb, (int)c)) & 0xFFu;
            cur[i] = (uint8_t)a;
            c = bb;
        }
        break;
    }
}

/* One row of n big-endian 16-bit pixels (x: 2n filtered bytes) into native uint16 values;
 * prev the reconstructed row above (native values; NULL for the first row). The byte swap is
 * done in the same pass; the left pixel stays in a register. */
static inline void segpng_row_u16(unsigned ft, const uint8_t *restrict x,
                                  const uint16_t *restrict prev, uint16_t *restrict cur,
                                  size_t n)
{
    size_t i;
    unsigned ahi = 0, alo = 0, a = 0, c = 0;
    if (prev == NULL) {
        ft = segpng_first_row_filter(ft);
        if (ft == 3) {
            for (i = 0; i < n; i++) {
                ahi = (x[2 * i] + (ahi >> 1)) & 0xFFu;
                alo = (x[2 * i + 1] + (alo >> 1)) & 0xFFu;
                cur[i] = (uint16_t)(ahi << 8 | alo);
            }
            return;
        }
    }
    switch (ft) {
    case 0:
        for (i = 0; i < n; i++)
            cur[i] = (uint16_t)((unsigned)x[2 * i] << 8 | x[2 * i + 1]);
        break;
    case 1:
        for (i = 0; i < n; i++) {
            if ((x[2 * i] | x[2 * i + 1]) == 0) { /* zero x repeats the left pixel: a span */
                uint16_t v = (uint16_t)(ahi << 8 | alo);
                cur[i] = v;
                while (i + 5 <= n && segpng_word(x + 2 * i + 2) == 0) {
                    cur[i + 1] = cur[i + 2] = cur[i + 3] = cur[i + 4] = v;
                    i += 4;
                }
                continue;
            }
            ahi = (ahi + x[2 * i]) & 0xFFu;
            alo = (alo + x[2 * i + 1]) & 0xFFu;
            cur[i] = (uint16_t)(ahi << 8 | alo);
        }
        break;
    case 2: /* both bytes added modulo 256, in 16-bit lanes the compiler vectorises */
        for (i = 0; i < n; i++) {
            unsigned v = (unsigned)x[2 * i] << 8 | x[2 * i + 1], bb = prev[i];
            cur[i] = (uint16_t)(((v + (bb & 0xFF00u)) & 0xFF00u)
                                | ((v + bb) & 0x00FFu));
        }
        break;
    case 3:
        for (i = 0; i < n; i++) {
            unsigned bb = prev[i];
            ahi = (x[2 * i] + ((ahi + (bb >> 8)) >> 1)) & 0xFFu;
            alo = (x[2 * i + 1] + ((alo + (bb & 0xFFu)) >> 1)) & 0xFFu;
            cur[i] = (uint16_t)(ahi << 8 | alo);
        }
        break;
    default:
        for (i = 0; i < n; i++) {
            unsigned xhi = x[2 * i], xlo = x[2 * i + 1], bb = prev[i];
            if ((xhi | xlo) == 0 && bb == c) {
                /* keeps a, as do the pixels after it while x stays zero and the row above
                 * does not change (as in segpng_row_u8): 4 pixels at a time */
                cur[i] = (uint16_t)a;
                while (i + 5 <= n && (segpng_word(x + 2 * i + 2)
                                      | (segpng_word(prev + i + 1) ^ segpng_word(prev + i))) == 0) {
                    cur[i + 1] = cur[i + 2] = cur[i + 3] = cur[i + 4] = (uint16_t)a;
                    i += 4;
                }
                c = prev[i];
                continue;
            }
            a = ((xhi + (unsigned)segpng_paeth((int)(a >> 8), (int)(bb >> 8), (int)(c >> 8)))
                 & 0xFFu) << 8
                | ((xlo + (unsigned)segpng_paeth((int)(a & 0xFFu), (int)(bb & 0xFFu),
                                                 (int)(c & 0xFFu))) & 0xFFu);
            cur[i] = (uint16_t)a;
            c = bb;
        }
        break;
    }
}

/* One row of n RGB (bpp 3) or RGBA (bpp 4) pixels straight into ids R | G << 8 | B << 16:
 * x the row's 3n or 4n filtered bytes, prev the ids of the row above (NULL for the first
 * row). Alpha bytes are skipped (see the top of this file). */
static inline void segpng_row_ids(unsigned ft, const uint8_t *restrict x, size_t bpp,
                                  const uint32_t *restrict prev, uint32_t *restrict cur,
                                  size_t n)
{
    size_t i;
    unsigned r = 0, g = 0, bl = 0;
    uint32_t a = 0, c = 0;
    if (prev == NULL) {
        ft = segpng_first_row_filter(ft);
        if (ft == 3) {
            for (i = 0; i < n; i++, x += bpp) {
                r = (x[0] + (r >> 1)) & 0xFFu;
                g = (x[1] + (g >> 1)) & 0xFFu;
                bl = (x[2] + (bl >> 1)) & 0xFFu;
                cur[i] = r | g << 8 | bl << 16;
            }
            return;
        }
    }
    switch (ft) {
    case 0:
        for (i = 0; i < n; i++, x += bpp)
            cur[i] = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16;
        break;
    case 1:
        for (i = 0; i < n; i++, x += bpp) {
            r = (r + x[0]) & 0xFFu;
            g = (g + x[1]) & 0xFFu;
            bl = (bl + x[2]) & 0xFFu;
            cur[i] = r | g << 8 | bl << 16;
        }
        break;
    case 2:
        for (i = 0; i < n; i++, x += bpp) {
            uint32_t b = prev[i];
            r = (x[0] + b) & 0xFFu;
            g = (x[1] + (b >> 8)) & 0xFFu;
            bl = (x[2] + (b >> 16)) & 0xFFu;
            cur[i] = r | g << 8 | bl << 16;
        }
        break;
    case 3:
        for (i = 0; i < n; i++, x += bpp) {
            uint32_t b = prev[i];
            r = (x[0] + ((r + (b & 0xFFu)) >> 1)) & 0xFFu;
            g = (x[1] + ((g + ((b >> 8) & 0xFFu)) >> 1)) & 0xFFu;
            bl = (x[2] + ((bl + (b >> 16)) >> 1)) & 0xFFu;
            cur[i] = r | g << 8 | bl << 16;
        }
        break;
    default:
        for (i = 0; i < n; i++, x += bpp) {
            unsigned x0 = x[0], x1 = x[1], x2 = x[2];
            uint32_t b = prev[i];
            /* else paeth(a, b, b) == a */
            if (SEGPNG_RARE(x0 != 0 || x1 != 0 || x2 != 0 || b != c)) {
                r = (x0 + (unsigned)segpng_paeth((int)(a & 0xFFu), (int)(b & 0xFFu),
                                                 (int)(c & 0xFFu))) & 0xFFu;
                g = (x1 + (unsigned)segpng_paeth((int)((a >> 8) & 0xFFu),
                                                 (int)((b >> 8) & 0xFFu),
                                                 (int)((c >> 8) & 0xFFu))) & 0xFFu;
                bl = (x2 + (unsigned)segpng_paeth((int)(a >> 16), (int)(b >> 16),
                                                  (int)(c >> 16))) & 0xFFu;
                a = r | g << 8 | bl << 16;
            }
            cur[i] = a;
            c = b;
        }
        break;
    }
}

/* Whole images. raw: the inflated image data, raw_len bytes, exactly h * (w * bpp + 1);
 * out: out_len elements, exactly h * w. Returns SEGPNG_OK, SEGPNG_BAD_FILTER with *bad_row
 * the first row whose filter type is not 0..4 (rows above it are written), or
 * SEGPNG_BAD_LENGTH (nothing read or written). h or w may be 0. */
int segpng_unfilter_gray8(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t out_len,
                          size_t h, size_t w, size_t *bad_row);
int segpng_unfilter_gray16(const uint8_t *raw, size_t raw_len, uint16_t *out, size_t out_len,
                           size_t h, size_t w, size_t *bad_row);
/* bpp 3 (RGB) or 4 (RGBA); any other bpp is SEGPNG_BAD_LENGTH. */
int segpng_unfilter_ids(const uint8_t *raw, size_t raw_len, size_t bpp, uint32_t *out,
                        size_t out_len, size_t h, size_t w, size_t *bad_row);

#ifdef __cplusplus
}
#endif

#endif
