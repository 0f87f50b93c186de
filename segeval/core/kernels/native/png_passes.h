/* Counting passes over PNG image data that never write the decoded image anywhere: the rows
 * are un-filtered (png_filters.h, the same row functions as the decoder, so the pixels are
 * exactly the decoder's) into small row buffers and counted while they are in cache.
 * Plain C99, no Python API; status codes as in png_filters.h. Every length is checked against
 * the header before the first access.
 */
#ifndef SEGEVAL_PNG_PASSES_H
#define SEGEVAL_PNG_PASSES_H

#include <stddef.h>
#include <stdint.h>

#include "png_filters.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The Cityscapes pass: the inflated image data of an 8-bit labelIds PNG (graw) and an 8-bit
 * prediction (praw), each exactly h * (w + 1) bytes, and, with with_inst, a 16-bit
 * instanceIds PNG (iraw, exactly h * (2w + 1) bytes; ignored, and may be NULL, without),
 * counted as segeval.core.kernels.cityscapes.count_cityscapes counts the decoded arrays:
 *
 *   hist[g << 8 | p] += 1 for every pixel (g the labelIds byte, p the prediction byte);
 *   for an instanceIds value k > offset (0 everywhere without with_inst), with
 *   q = pred_lut[p]: size[k] += 1; tp[k] += 1 where q == label_of[k]; cat_tp[k] += 1 where
 *   category_of[q] == inst_cat[k].
 *
 * Tables: pred_lut and category_of 256 entries, label_of, inst_cat, hist, size, tp and cat_tp
 * 65536 (each length is checked). Each row is un-filtered into a two-row ring buffer, split
 * into runs of equal (label, prediction, instance) triples (a vectorised XOR of neighbours,
 * then searched 4 pixels at a time: label maps have about one run end per 100 pixels), and
 * each run is added once. Returns SEGPNG_OK; SEGPNG_BAD_FILTER with *bad_file (0 labelIds,
 * 1 prediction, 2 instanceIds) and *bad_row (the tables then hold partial counts);
 * SEGPNG_BAD_LENGTH; SEGPNG_NO_MEMORY (the row buffers: 8 w + 8 bytes). */
int segpng_count_cityscapes_rows(
    const uint8_t *graw, size_t graw_len, const uint8_t *praw, size_t praw_len,
    const uint8_t *iraw, size_t iraw_len, size_t h, size_t w, int with_inst, int64_t offset,
    const uint8_t *pred_lut, size_t pred_lut_len, const uint8_t *category_of,
    size_t category_of_len, const uint8_t *label_of, size_t label_of_len,
    const uint8_t *inst_cat, size_t inst_cat_len, int64_t *hist, size_t hist_len,
    int64_t *size, size_t size_len, int64_t *tp, size_t tp_len, int64_t *cat_tp,
    size_t cat_tp_len, size_t *bad_file, size_t *bad_row);

/* The instance-mask pass: raw, the inflated image data of an 8-bit grey mask PNG (exactly
 * h * (w + 1) bytes), against ids, the h * w ground-truth map (exactly ids_len == h * w;
 * uint8 or uint16): for every non-zero mask pixel p, counts[index[ids[p]]] += 1. Every
 * ids value must be below index_len and every index value it reaches in [0, counts_len):
 * else SEGPNG_BAD_INDEX (counts partial); h and w must be below 2^63 (the box is int64).
 * Also gives the mask's bounding box, end-exclusive:
 * box[0] top, box[1] bottom, box[2] left, box[3] right; box[0] == -1 for an empty mask.
 *
 * A row whose filtered bytes are all zero, under a row that is all zero, is all zero
 * whatever its filter type (every filter adds zero to zero): it is only checked, not
 * un-filtered (and its Adler-32 skips the zeros in the streamed pass below). Other rows are
 * un-filtered into one of two row buffers, and only the span from the first to the last
 * non-zero byte is looked up. Returns SEGPNG_OK, SEGPNG_BAD_FILTER
 * (*bad_row), SEGPNG_BAD_LENGTH, SEGPNG_BAD_INDEX or SEGPNG_NO_MEMORY (2 w bytes). */
int segpng_mask_overlaps_u8(const uint8_t *raw, size_t raw_len, size_t h, size_t w,
                            const uint8_t *ids, size_t ids_len, const int32_t *index,
                            size_t index_len, int64_t *counts, size_t counts_len,
                            size_t *bad_row, int64_t box[4]);
int segpng_mask_overlaps_u16(const uint8_t *raw, size_t raw_len, size_t h, size_t w,
                             const uint16_t *ids, size_t ids_len, const int32_t *index,
                             size_t index_len, int64_t *counts, size_t counts_len,
                             size_t *bad_row, int64_t box[4]);

/* The instance-mask pass over the rows of a zlib stream as they are inflated
 * (png_inflate.h: the inflated image data is never held whole, only a window of about 100 KiB):
 * stream, the concatenated IDAT data of an 8-bit grey mask PNG; the other arguments, the
 * results and the codes as segpng_mask_overlaps_u8/u16 give them for the inflated data, plus
 * SEGPNG_BAD_STREAM (*why: the SEGPNG_INFLATE_ code) where the stream is not a zlib stream of
 * exactly h * (w + 1) bytes with the right Adler-32 (the counts are then partial). A stream
 * refusal comes before a bad filter type or index, as when the stream is inflated first: the
 * stream is inflated to its end either way. */
#define SEGPNG_BAD_STREAM (-4)
int segpng_mask_overlaps_stream_u8(const uint8_t *stream, size_t stream_len, size_t h,
                                   size_t w, const uint8_t *ids, size_t ids_len,
                                   const int32_t *index, size_t index_len, int64_t *counts,
                                   size_t counts_len, size_t *bad_row, int64_t box[4],
                                   int *why);
int segpng_mask_overlaps_stream_u16(const uint8_t *stream, size_t stream_len, size_t h,
                                    size_t w, const uint16_t *ids, size_t ids_len,
                                    const int32_t *index, size_t index_len, int64_t *counts,
                                    size_t counts_len, size_t *bad_row, int64_t box[4],
                                    int *why);

/* The same for a whole PNG file data[0:len): its chunks walked (png_chunks.h: signature,
 * CRCs, IHDR, IDAT, IEND), then the streamed pass over its IDAT data. SEGPNG_NOT_FAST
 * (*why: the SEGPNG_WALK_ code) where the walk refuses the file or it is not a non-interlaced,
 * non-animated 8-bit grey PNG of h x w pixels: nothing counted; the caller decodes it another
 * way (and words the errors). One call per mask file: no Python between the file's bytes and
 * its counts. */
#define SEGPNG_NOT_FAST (-5)
int segpng_mask_overlaps_png_u8(const uint8_t *data, size_t len, size_t h, size_t w,
                                const uint8_t *ids, size_t ids_len, const int32_t *index,
                                size_t index_len, int64_t *counts, size_t counts_len,
                                size_t *bad_row, int64_t box[4], int *why);
int segpng_mask_overlaps_png_u16(const uint8_t *data, size_t len, size_t h, size_t w,
                                 const uint16_t *ids, size_t ids_len, const int32_t *index,
                                 size_t index_len, int64_t *counts, size_t counts_len,
                                 size_t *bad_row, int64_t box[4], int *why);

#ifdef __cplusplus
}
#endif

#endif
