/* The chunk walk of a PNG file (ISO/IEC 15948, section 5): signature, chunk lengths, the
 * CRC-32 of every chunk, IHDR first and once, the IDAT chunks consecutive, IEND. Plain C99, no
 * Python API; every read is within [data, data + len).
 *
 * segpng_walk_chunks reports the first problem as a code and its position (the caller words
 * the message, segeval.formats.png._parse); the checks, in file order, are those of the
 * Python walk it replaces, so that the two give the same answer on every byte string:
 *
 *   for each chunk from byte 8:
 *     fewer than 8 bytes left                    SEGPNG_WALK_TRUNCATED (pos = len)
 *     length > 2^31 - 1 or chunk past the end    SEGPNG_WALK_PAST_END
 *     CRC-32 of type + data != the stored CRC    SEGPNG_WALK_BAD_CRC
 *     first chunk not a 13-byte IHDR             SEGPNG_WALK_FIRST_NOT_IHDR
 *     a later IHDR                               SEGPNG_WALK_SECOND_IHDR
 *     an IDAT after another chunk that follows IDATs   SEGPNG_WALK_IDAT_SPLIT
 *     IEND                                       the walk ends (what follows is ignored)
 *     acTL before the first IDAT                 animated = 1
 *   then: no IDAT chunk                          SEGPNG_WALK_NO_IDAT
 *         width or height 0 or above 2^31 - 1    SEGPNG_WALK_BAD_SIZE
 *         compression or filter method not 0, interlace method above 1
 *                                                SEGPNG_WALK_BAD_METHOD
 *
 * (The signature is checked first: SEGPNG_WALK_SIGNATURE.) On every error the fields known so
 * far are filled: pos, and for a chunk error its type (ctype) and length; for the last two,
 * the IHDR fields.
 */
#ifndef SEGEVAL_PNG_CHUNKS_H
#define SEGEVAL_PNG_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEGPNG_WALK_OK 0
#define SEGPNG_WALK_SIGNATURE 1
#define SEGPNG_WALK_TRUNCATED 2
#define SEGPNG_WALK_PAST_END 3
#define SEGPNG_WALK_BAD_CRC 4
#define SEGPNG_WALK_FIRST_NOT_IHDR 5
#define SEGPNG_WALK_SECOND_IHDR 6
#define SEGPNG_WALK_IDAT_SPLIT 7
#define SEGPNG_WALK_NO_IDAT 8
#define SEGPNG_WALK_BAD_SIZE 9
#define SEGPNG_WALK_BAD_METHOD 10
#define SEGPNG_WALK_BAD_ARGUMENT (-1) /* data == NULL with len > 0, or out == NULL */

typedef struct {
    /* IHDR (valid once have_ihdr) */
    int have_ihdr;
    uint32_t width, height;
    uint8_t bit_depth, colour_type, compression, filter, interlace;
    int animated;          /* an acTL chunk before the first IDAT */
    /* the IDAT chunks: consecutive, from byte idat_start to idat_end (headers and CRCs
     * included); idat_count chunks holding idat_bytes bytes of data */
    size_t idat_start, idat_end, idat_count;
    uint64_t idat_bytes;
    /* the error: where, and the chunk's type and length for a chunk error */
    size_t pos;
    uint8_t ctype[4];
    uint32_t length;
} segpng_walk;

/* CRC-32 (ISO 3309, as zlib's crc32) of n bytes, continuing from crc (0 to start). */
uint32_t segpng_crc32(uint32_t crc, const uint8_t *p, size_t n);

/* Fills the CRC tables; segpng_crc32 calls it on first use, but it writes static tables, so
 * call it once before any concurrent use (the Python module does at import). */
void segpng_crc32_init(void);

/* Walk the chunks of data[0:len) into *out; returns a SEGPNG_WALK_ code. */
int segpng_walk_chunks(const uint8_t *data, size_t len, segpng_walk *out);

/* Copy the data of the consecutive IDAT chunks found by the walk (data[start:end) of a file of
 * len bytes) into out, which holds exactly their total, out_len bytes. Returns SEGPNG_WALK_OK,
 * or SEGPNG_WALK_BAD_ARGUMENT where the span is not a run of IDAT chunks of that total
 * (nothing is read outside data or written outside out either way). */
int segpng_gather_idat(const uint8_t *data, size_t len, size_t start, size_t end,
                       uint8_t *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif
