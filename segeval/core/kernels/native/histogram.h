/* The (ground truth, prediction) byte-pair histogram: hist[gt[i] << 8 | pred[i]] += 1.
 *
 * Label maps are long runs of one pair, and a plain loop that increments the same bin pixel
 * after pixel waits on its own store every time. Here eight pixels are compared at once (two
 * 8-byte loads) with the pair that ended the previous block: a block that repeats it only adds 8
 * to a run kept in a register; any other block is counted pixel by pixel. No input can make it
 * read or write outside gt[0..n), pred[0..n) and hist[0..65536). */
#ifndef SEGEVAL_HISTOGRAM_H
#define SEGEVAL_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t segeval_load8(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8); /* an unaligned load, whatever the platform */
    return v;
}

static inline void segeval_histogram_u8(const uint8_t *gt, const uint8_t *pred, size_t n,
                                        int64_t *hist) {
    const uint64_t ones = 0x0101010101010101ULL;
    size_t i = 0, run = 0;
    unsigned key = 0; /* the pair of the run being counted (run == 0: none) */
    uint64_t gfill = 0, pfill = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t g8 = segeval_load8(gt + i), p8 = segeval_load8(pred + i);
        if (run && g8 == gfill && p8 == pfill) {
            run += 8;
            continue;
        }
        if (run) {
            hist[key] += (int64_t)run;
            run = 0;
        }
        for (size_t j = i; j < i + 7; j++)
            hist[((unsigned)gt[j] << 8) | pred[j]] += 1;
        key = ((unsigned)gt[i + 7] << 8) | pred[i + 7];
        run = 1;
        gfill = ones * gt[i + 7];
        pfill = ones * pred[i + 7];
    }
    if (run)
        hist[key] += (int64_t)run;
    for (; i < n; i++)
        hist[((unsigned)gt[i] << 8) | pred[i]] += 1;
}

#endif
