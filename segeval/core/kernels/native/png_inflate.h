/* A streaming zlib inflater (RFC 1950 / RFC 1951) that hands out PNG rows.
 *
 * segpng_inflate_rows decodes a zlib stream into a small sliding window (32 KiB of history,
 * the row being assembled and 256 KiB of room: about 300 KiB for a 2048-pixel 8-bit row, in
 * L2 cache) instead of the whole inflated image, and calls a function for every completed row of
 * `stride` bytes, in order, with a pointer to the row's bytes (contiguous, valid for the call
 * only). The image data of a mask PNG inflates to megabytes of which a few hundred bytes are
 * not zero: writing them all to memory and reading them back costs more than the decoding.
 *
 * It accepts exactly what zlib's inflate (as Python's zlib.decompressobj() runs it: a zlib
 * header, a 32 KiB window) accepts, and gives the same bytes, under the size constraint of a
 * PNG: the stream must inflate to exactly rows * stride bytes, end (final block), and carry the
 * right Adler-32; bytes after the Adler-32 are ignored, as zlib leaves them unused. Refused:
 *
 *   SEGPNG_INFLATE_BAD_HEADER  the 2-byte zlib header: method not 8, window above 32 KiB,
 *                              check bits, a preset dictionary (zlib: Z_NEED_DICT)
 *   SEGPNG_INFLATE_BAD_DATA    a block type 3, stored lengths that do not match, more than 286
 *                              length or 30 distance codes, code lengths that over-subscribe a
 *                              code, an incomplete code (but a single code of one bit for
 *                              literals/lengths or distances, and no distance code at all, as
 *                              zlib allows), a repeat with nothing to repeat or past the end of
 *                              the lengths, no end-of-block code, a symbol that has no code
 *                              (incl. literal/length 286, 287 and distance 30, 31 of the fixed
 *                              code), a distance before the start of the output
 *   SEGPNG_INFLATE_TRUNCATED   the input ends before the stream does (Adler-32 included)
 *   SEGPNG_INFLATE_TOO_LONG    the stream inflates to more than rows * stride bytes
 *   SEGPNG_INFLATE_TOO_SHORT   the stream ends before rows * stride bytes
 *   SEGPNG_INFLATE_BAD_ADLER   the Adler-32 does not match
 *   SEGPNG_INFLATE_NO_MEMORY   the window could not be allocated
 *
 * Those codes are all negative and distinct from the SEGPNG_ codes of png_filters.h. Where
 * zlib would name one error and this code another (zlib reads input ahead of the output; the
 * code here checks the length of the output first), only the acceptance is the same.
 *
 * Safety on hostile input: every input byte read is within [src, src + len) (past the end,
 * zero bits are supplied and the stream is refused as truncated if they are used); code
 * lengths are validated before a table is built; a distance never reaches before the start of
 * the output; nothing is written beyond the window, and no more than rows * stride bytes are
 * produced; every loop consumes input or produces bounded output.
 *
 * Plain C99, no Python API, no global state (thread-safe).
 */
#ifndef SEGEVAL_PNG_INFLATE_H
#define SEGEVAL_PNG_INFLATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEGPNG_INFLATE_OK 0
#define SEGPNG_INFLATE_STOPPED 1       /* the row function asked to stop (the stream is valid) */
#define SEGPNG_INFLATE_BAD_HEADER (-10)
#define SEGPNG_INFLATE_BAD_DATA (-11)
#define SEGPNG_INFLATE_TRUNCATED (-12)
#define SEGPNG_INFLATE_TOO_LONG (-13)
#define SEGPNG_INFLATE_TOO_SHORT (-14)
#define SEGPNG_INFLATE_BAD_ADLER (-15)
#define SEGPNG_INFLATE_NO_MEMORY (-16)
#define SEGPNG_INFLATE_BAD_ARGUMENT (-17) /* src == NULL with len > 0, stride 0, or overflow */

/* Called for row y (0, 1, ...) with its `stride` bytes. The bytes x = row + 1 (the filtered
 * bytes of a PNG row) outside x[lo:hi) are zero: the inflater knows it without looking (they
 * come after the last byte it wrote that may not be zero, or before the first such byte of
 * the row); lo == hi when they are all zero. Returns 0 to go on; a negative value stops the
 * calls: it is kept and returned through *stop_status. */
typedef int (*segpng_row_fn)(void *ctx, size_t y, const uint8_t *row, size_t lo, size_t hi);

/* Inflate the zlib stream src[0:len) as rows rows of stride bytes, calling row_fn (which may
 * be NULL: the stream is only checked) for each. Returns SEGPNG_INFLATE_OK, a refusal above
 * (rows may have been handed out before it was found), or SEGPNG_INFLATE_STOPPED when the
 * row function returned a negative value (*stop_status) and the stream is otherwise valid: the
 * stream is inflated and checked to its end either way, so that a refusal of the stream comes
 * before what the row function found, as when the stream is inflated first. */
int segpng_inflate_rows(const uint8_t *src, size_t len, size_t stride, size_t rows,
                        segpng_row_fn row_fn, void *ctx, int *stop_status);

/* Adler-32 (RFC 1950) of n bytes continuing from adler (1 to start), with runs of zero bytes
 * added in O(1) per 32 bytes. */
uint32_t segpng_adler32(uint32_t adler, const uint8_t *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif
