/* The chunk walk of a PNG file: see png_chunks.h. */
#include <string.h>

#include "png_chunks.h"

static uint32_t crc_table[8][256];
static volatile int crc_ready = 0;

void segpng_crc32_init(void)
{
    uint32_t n, k, c;
    if (crc_ready)
        return;
    for (n = 0; n < 256; n++) {
        c = n;
        for (k = 0; k < 8; k++)
            c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][n] = c;
    }
    for (n = 0; n < 256; n++)
        for (k = 1; k < 8; k++)
            crc_table[k][n] = (crc_table[k - 1][n] >> 8)
                              ^ crc_table[0][crc_table[k - 1][n] & 0xFFu];
    crc_ready = 1;
}

/* slicing-by-8: eight table look-ups per 8 bytes, bytes read one by one (any alignment and
 * byte order) */
uint32_t segpng_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    if (!crc_ready)
        segpng_crc32_init();
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
                             | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16
                      | (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xFFu] ^ crc_table[6][(lo >> 8) & 0xFFu]
              ^ crc_table[5][(lo >> 16) & 0xFFu] ^ crc_table[4][lo >> 24]
              ^ crc_table[3][hi & 0xFFu] ^ crc_table[2][(hi >> 8) & 0xFFu]
              ^ crc_table[1][(hi >> 16) & 0xFFu] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = crc_table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const uint8_t SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

int segpng_walk_chunks(const uint8_t *data, size_t len, segpng_walk *out)
{
    size_t pos = 8;
    int idat_done = 0;
    if (out == NULL || (data == NULL && len != 0))
        return SEGPNG_WALK_BAD_ARGUMENT;
    memset(out, 0, sizeof(*out));
    if (len < 8 || memcmp(data, SIGNATURE, 8) != 0)
        return SEGPNG_WALK_SIGNATURE;
    for (;;) {
        const uint8_t *chunk = data + pos;
        uint32_t length;
        out->pos = pos;
        if (len - pos < 8) { /* pos <= len always */
            out->pos = len;
            return SEGPNG_WALK_TRUNCATED;
        }
        length = be32(chunk);
        memcpy(out->ctype, chunk + 4, 4);
        out->length = length;
        if (length > 0x7FFFFFFFu || (uint64_t)(len - pos) < 12u + (uint64_t)length)
            return SEGPNG_WALK_PAST_END;
        if (segpng_crc32(0, chunk + 4, 4 + (size_t)length) != be32(chunk + 8 + length))
            return SEGPNG_WALK_BAD_CRC;
        if (!out->have_ihdr) {
            if (memcmp(chunk + 4, "IHDR", 4) != 0 || length != 13)
                return SEGPNG_WALK_FIRST_NOT_IHDR;
            out->have_ihdr = 1;
            out->width = be32(chunk + 8);
            out->height = be32(chunk + 12);
            out->bit_depth = chunk[16];
            out->colour_type = chunk[17];
            out->compression = chunk[18];
            out->filter = chunk[19];
            out->interlace = chunk[20];
        } else if (memcmp(chunk + 4, "IHDR", 4) == 0) {
            return SEGPNG_WALK_SECOND_IHDR;
        } else if (memcmp(chunk + 4, "IDAT", 4) == 0) {
            if (idat_done)
                return SEGPNG_WALK_IDAT_SPLIT;
            if (out->idat_count == 0)
                out->idat_start = pos;
            out->idat_count++;
            out->idat_bytes += length;
            out->idat_end = pos + 12 + (size_t)length;
        } else if (memcmp(chunk + 4, "IEND", 4) == 0) {
            break;
        } else {
            if (memcmp(chunk + 4, "acTL", 4) == 0 && out->idat_count == 0)
                out->animated = 1;
            idat_done = out->idat_count != 0;
        }
        pos += 12 + (size_t)length;
    }
    if (out->idat_count == 0)
        return SEGPNG_WALK_NO_IDAT;
    if (out->width == 0 || out->height == 0 || out->width > 0x7FFFFFFFu
            || out->height > 0x7FFFFFFFu)
        return SEGPNG_WALK_BAD_SIZE;
    if (out->compression != 0 || out->filter != 0 || out->interlace > 1)
        return SEGPNG_WALK_BAD_METHOD;
    return SEGPNG_WALK_OK;
}

int segpng_gather_idat(const uint8_t *data, size_t len, size_t start, size_t end,
                       uint8_t *out, size_t out_len)
{
    size_t pos = start, done = 0;
    if ((data == NULL && len != 0) || (out == NULL && out_len != 0) || start > end
            || end > len)
        return SEGPNG_WALK_BAD_ARGUMENT;
    while (pos < end) {
        uint32_t length;
        if (end - pos < 12 || memcmp(data + pos + 4, "IDAT", 4) != 0)
            return SEGPNG_WALK_BAD_ARGUMENT;
        length = be32(data + pos);
        if ((uint64_t)(end - pos) < 12u + (uint64_t)length || out_len - done < length)
            return SEGPNG_WALK_BAD_ARGUMENT;
        if (length != 0)
            memcpy(out + done, data + pos + 8, length);
        done += length;
        pos += 12 + (size_t)length;
    }
    return done == out_len ? SEGPNG_WALK_OK : SEGPNG_WALK_BAD_ARGUMENT;
}
