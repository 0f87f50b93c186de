/* Whole-image PNG un-filtering: see png_filters.h. Every length is checked against the
 * header (h, w, bpp) before the first access, with overflow-safe size arithmetic. */
#include "png_filters.h"

/* The checks shared by the whole-image functions: raw holds exactly h * (w * bpp + 1)
 * bytes, out exactly h * w elements, and a non-empty array has a pointer. */
static int check_image(const void *raw, size_t raw_len, const void *out, size_t out_len,
                       size_t h, size_t w, size_t bpp, size_t *stride)
{
    size_t total, pixels;
    if (!segpng_image_bytes(h, w, bpp, stride, &total) || total != raw_len)
        return 0;
    if (!segpng_mul(h, w, &pixels) || pixels != out_len)
        return 0;
    if ((raw_len != 0 && raw == NULL) || (out_len != 0 && out == NULL))
        return 0;
    return 1;
}

int segpng_unfilter_gray8(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t out_len,
                          size_t h, size_t w, size_t *bad_row)
{
    size_t y, stride;
    if (!check_image(raw, raw_len, out, out_len, h, w, 1, &stride))
        return SEGPNG_BAD_LENGTH;
    for (y = 0; y < h; y++) {
        const uint8_t *row = raw + y * stride;
        if (row[0] > 4) {
            *bad_row = y;
            return SEGPNG_BAD_FILTER;
        }
        segpng_row_u8(row[0], row + 1, y ? out + (y - 1) * w : NULL, out + y * w, w);
    }
    return SEGPNG_OK;
}

int segpng_unfilter_gray16(const uint8_t *raw, size_t raw_len, uint16_t *out, size_t out_len,
                           size_t h, size_t w, size_t *bad_row)
{
    size_t y, stride;
    if (!check_image(raw, raw_len, out, out_len, h, w, 2, &stride))
        return SEGPNG_BAD_LENGTH;
    for (y = 0; y < h; y++) {
        const uint8_t *row = raw + y * stride;
        if (row[0] > 4) {
            *bad_row = y;
            return SEGPNG_BAD_FILTER;
        }
        segpng_row_u16(row[0], row + 1, y ? out + (y - 1) * w : NULL, out + y * w, w);
    }
    return SEGPNG_OK;
}

int segpng_unfilter_ids(const uint8_t *raw, size_t raw_len, size_t bpp, uint32_t *out,
                        size_t out_len, size_t h, size_t w, size_t *bad_row)
{
    size_t y, stride;
    if ((bpp != 3 && bpp != 4) || !check_image(raw, raw_len, out, out_len, h, w, bpp, &stride))
        return SEGPNG_BAD_LENGTH;
    for (y = 0; y < h; y++) {
        const uint8_t *row = raw + y * stride;
        if (row[0] > 4) {
            *bad_row = y;
            return SEGPNG_BAD_FILTER;
        }
        /* the two constant strides give the compiler two specialised loops */
        if (bpp == 3)
            segpng_row_ids(row[0], row + 1, 3, y ? out + (y - 1) * w : NULL, out + y * w, w);
        else
            segpng_row_ids(row[0], row + 1, 4, y ? out + (y - 1) * w : NULL, out + y * w, w);
    }
    return SEGPNG_OK;
}
