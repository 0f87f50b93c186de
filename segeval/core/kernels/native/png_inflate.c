/* The streaming zlib inflater: see png_inflate.h.
 *
 * Decoding: a 64-bit bit buffer refilled 8 bytes at a time where 8 input bytes remain (byte
 * by byte near the end of the input, then with zero bits whose use is a truncation); Huffman
 * codes through a root table (10 bits for literals/lengths, 8 for distances, 7 for the code
 * length code) and, for the rare longer codes, canonical decoding bit by bit from the code
 * counts (as RFC 1951 section 3.2.2 builds the codes). The output goes to a window of
 * 32 KiB history + one row + 256 KiB of room; completed rows are handed out from it, and when
 * the room is used up the last 32 KiB (or the incomplete row, if longer) move to its start.
 */
#include <stdlib.h>
#include <string.h>

#include "png_inflate.h"

#define HIST 32768u      /* the deflate window: the farthest a distance reaches */
#define ROOM 262144u     /* output written between two slides of the window */
#define MAX_MATCH 258u
#define OVERSHOOT 16u    /* a match copy may write up to this many bytes past its end */
#define ADLER_MOD 65521u

#define LIT_ROOT 10
#define DIST_ROOT 8
#define PRE_ROOT 7
#define MAX_LIT 288  /* literal/length symbols of the fixed code (286 and 287 have no meaning) */

/* A Huffman code: how many codes of each length, the symbols in canonical order, and a table
 * of the next `root` input bits -> symbol << 4 | code length (0: the code is longer than
 * root bits, or there is none: decoded bit by bit). */
typedef struct {
    uint16_t count[16];
    uint16_t sym[MAX_LIT];
    unsigned root;
    uint16_t table[1u << LIT_ROOT];
} huff;

typedef struct {
    huff lit, dist, pre, fixlit, fixdist;
    int fixed_built;
    uint8_t lens[320];
} codes;

#define KIND_PRE 0
#define KIND_LIT 1
#define KIND_DIST 2

/* Build the code of n symbols with the given lengths (0: no code), as zlib's inflate_table
 * accepts them: 0, or -1 for lengths that over-subscribe the code, or leave it incomplete
 * (allowed for literals/lengths and distances only as one code of one bit, and for distances
 * as no code at all; the code length code must be complete). */
static int build(huff *hf, const uint8_t *lens, unsigned n, unsigned root, int kind)
{
    unsigned len, s, max, code, idx, i;
    uint16_t offs[16];
    long left = 1;

    memset(hf->count, 0, sizeof hf->count);
    for (s = 0; s < n; s++)
        hf->count[lens[s]]++;
    hf->count[0] = 0;
    for (max = 15; max >= 1 && hf->count[max] == 0; max--)
        ;
    hf->root = root;
    memset(hf->table, 0, sizeof(uint16_t) << root);
    if (max == 0) /* no code at all: only a distance code may be empty (never used then) */
        return kind == KIND_DIST ? 0 : -1;
    for (len = 1; len <= 15; len++) {
        left <<= 1;
        left -= hf->count[len];
        if (left < 0)
            return -1; /* over-subscribed */
    }
    if (left > 0 && (kind == KIND_PRE || max != 1))
        return -1; /* incomplete */
    offs[1] = 0;
    for (len = 1; len < 15; len++)
        offs[len + 1] = (uint16_t)(offs[len] + hf->count[len]);
    for (s = 0; s < n; s++)
        if (lens[s] != 0)
            hf->sym[offs[lens[s]]++] = (uint16_t)s;
    /* the root table: each code of len <= root bits fills every entry whose low len bits are
     * the code, bit-reversed (Huffman codes are packed from their most significant bit) */
    code = 0;
    idx = 0;
    for (len = 1; len <= root && len <= max; len++) {
        for (i = 0; i < hf->count[len]; i++, idx++, code++) {
            unsigned rev = 0, b, j;
            for (b = 0; b < len; b++)
                rev |= ((code >> b) & 1u) << (len - 1 - b);
            for (j = rev; j < (1u << root); j += 1u << len)
                hf->table[j] = (uint16_t)(hf->sym[idx] << 4 | len);
        }
        code <<= 1;
    }
    return 0;
}

/* A code longer than the root table (or none): canonical decoding one bit at a time from the
 * buffered bits (at least 15 are there). The symbol, its length in *used; -1 for no code. */
static int decode_slow(const huff *hf, uint64_t bits, unsigned *used)
{
    long code = 0, first = 0, index = 0;
    unsigned len;
    for (len = 1; len <= 15; len++) {
        long count = hf->count[len];
        code |= (long)(bits & 1u);
        bits >>= 1;
        if (code - count < first) {
            *used = len;
            return hf->sym[index + (code - first)];
        }
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

static const uint16_t LEN_BASE[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,
                                      15, 17, 19, 23, 27, 31, 35, 43, 51,  59,
                                      67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t LEN_EXTRA[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t DIST_BASE[30] = {1,    2,    3,    4,    5,    7,     9,     13,
                                       17,   25,   33,   49,   65,   97,    129,   193,
                                       257,  385,  513,  769,  1025, 1537,  2049,  3073,
                                       4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t DIST_EXTRA[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
/* the order of the code length code lengths (RFC 1951 3.2.7) */
static const uint8_t PRE_ORDER[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                      11, 4, 12, 3, 13, 2, 14, 1, 15};

/* ------------------------------------------------------------------------------ Adler-32 */

uint32_t segpng_adler32(uint32_t adler, const uint8_t *p, size_t n)
{
    uint64_t a = adler & 0xFFFFu, b = adler >> 16;
    while (n >= 32) {
        /* up to 1024 blocks of 32 bytes between reductions: a stays below 2^24, b below
         * 2^39 */
        size_t blocks = n / 32, k, i;
        if (blocks > 1024)
            blocks = 1024;
        for (k = 0; k < blocks; k++, p += 32) {
            uint64_t w0, w1, w2, w3;
            memcpy(&w0, p, 8);
            memcpy(&w1, p + 8, 8);
            memcpy(&w2, p + 16, 8);
            memcpy(&w3, p + 24, 8);
            if ((w0 | w1 | w2 | w3) == 0) {
                b += 32 * a; /* 32 zero bytes: a unchanged */
            } else {
                for (i = 0; i < 32; i++) {
                    a += p[i];
                    b += a;
                }
            }
        }
        n -= blocks * 32;
        a %= ADLER_MOD;
        b %= ADLER_MOD;
    }
    while (n--) {
        a += *p++;
        b += a;
    }
    a %= ADLER_MOD;
    b %= ADLER_MOD;
    return (uint32_t)(b << 16 | a);
}

/* k zero bytes after the state adler */
static inline uint32_t adler_zeros(uint32_t adler, uint64_t k)
{
    uint64_t a = adler & 0xFFFFu, b = adler >> 16;
    b = (b + (k % ADLER_MOD) * a) % ADLER_MOD;
    return (uint32_t)(b << 16 | a);
}

/* -------------------------------------------------------------------------- the inflater */

typedef struct {
    const uint8_t *in, *end;
    uint64_t bitbuf; /* bits above bitcnt may hold the next input bits (see refill) */
    unsigned bitcnt;
    size_t overrun;  /* zero bytes supplied past the end of the input */
} bits_t;

/* Refill to 56..63 bits. Where 8 input bytes remain, they are OR-ed in at once and as
 * many whole bytes counted as fit: bits above bitcnt then hold the start of the next byte,
 * which the next refill ORs in again at the same place. Past the end, zero bytes are supplied
 * and counted; using one of them is a truncated stream (0 then). */
static inline int refill(bits_t *s)
{
    if (s->end - s->in >= 8) {
        uint64_t word;
        memcpy(&word, s->in, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        s->bitbuf |= word << s->bitcnt;
        s->in += (63 - s->bitcnt) >> 3;
        s->bitcnt |= 56;
        return 1;
    }
    if (s->bitcnt < 8 * s->overrun)
        return 0; /* a supplied zero bit was used */
    while (s->bitcnt < 56) {
        if (s->in < s->end) {
            s->bitbuf |= (uint64_t)*s->in++ << s->bitcnt;
        } else {
            s->bitbuf &= ((uint64_t)1 << s->bitcnt) - 1;
            s->overrun++;
        }
        s->bitcnt += 8;
    }
    return 1;
}

#define BITS(n) ((unsigned)(s.bitbuf & (((uint64_t)1 << (n)) - 1)))
#define DROP(n)                                                                           \
    do {                                                                                  \
        s.bitbuf >>= (n);                                                                 \
        s.bitcnt -= (n);                                                                  \
    } while (0)
#define REFILL()                                                                          \
    do {                                                                                  \
        if (!refill(&s)) {                                                                \
            status = SEGPNG_INFLATE_TRUNCATED;                                            \
            goto done;                                                                    \
        }                                                                                 \
    } while (0)
#define FAIL(code)                                                                        \
    do {                                                                                  \
        status = (code);                                                                  \
        goto done;                                                                        \
    } while (0)
/* decode one symbol of code h into sym (-1 for none) */
#define DECODE(h, sym)                                                                    \
    do {                                                                                  \
        unsigned e_ = (h)->table[s.bitbuf & ((1u << (h)->root) - 1)], n_;                 \
        if (e_ != 0) {                                                                    \
            sym = (int)(e_ >> 4);                                                         \
            n_ = e_ & 15u;                                                                \
        } else {                                                                          \
            sym = decode_slow((h), s.bitbuf, &n_);                                        \
            if (sym < 0)                                                                  \
                FAIL(SEGPNG_INFLATE_BAD_DATA);                                            \
        }                                                                                 \
        DROP(n_);                                                                         \
    } while (0)

/* Give the bytes left in the bit buffer back to the input, at a byte boundary (for a stored
 * block and the Adler-32); 0 if a supplied zero bit was used. */
static int rewind_bits(bits_t *s)
{
    unsigned drop = s->bitcnt & 7u;
    size_t whole;
    s->bitbuf >>= drop;
    s->bitcnt -= drop;
    whole = s->bitcnt >> 3;
    if (whole < s->overrun)
        return 0;
    s->in -= whole - s->overrun;
    s->bitbuf = 0;
    s->bitcnt = 0;
    s->overrun = 0;
    return 1;
}

/* Whether n bytes are all zero (an OR the compiler vectorises). */
static inline int all_zero(const uint8_t *p, size_t n)
{
    unsigned acc = 0;
    size_t i;
    for (i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* Copy a match of len bytes from dist back (dist <= what is written, may be < len); up to
 * OVERSHOOT bytes past the end may be written (the window has room for them). */
static inline void copy_match(uint8_t *dst, size_t dist, size_t len)
{
    const uint8_t *src = dst - dist;
    uint8_t *stop = dst + len;
    if (dist >= 16) {
        do {
            memcpy(dst, src, 16);
            dst += 16;
            src += 16;
        } while (dst < stop);
    } else if (dist == 1) {
        memset(dst, *src, len);
    } else if (dist >= 8) {
        do {
            memcpy(dst, src, 8);
            dst += 8;
            src += 8;
        } while (dst < stop);
    } else {
        while (dst < stop)
            *dst++ = *src++;
    }
}

/* The output side: the window, the rows handed out, the Adler-32 of what was handed out. */
typedef struct {
    uint8_t *win;
    size_t pos, row_start, stride, slide_at, y;
    size_t row_abs;    /* the output position of win[row_start] */
    /* the bytes produced at or after row_abs that may not be zero lie in
     * [dirty_lo, dirty_end) (none if dirty_lo >= dirty_end); every byte from dirty_end on is
     * zero */
    size_t dirty_lo, dirty_end;
    size_t clean_from; /* win[clean_from:] holds zeros (whatever they stand for) */
    uint32_t adler;
    segpng_row_fn row_fn;
    void *ctx;
    int *stop_status;
} sink_t;

/* Zeros into win[pos:pos + n): only below clean_from are they written. */
static inline void put_zeros(sink_t *o, size_t pos, size_t n)
{
    if (pos < o->clean_from) {
        size_t stop = pos + n < o->clean_from ? pos + n : o->clean_from;
        memset(o->win + pos, 0, stop - pos);
        if (pos + n >= o->clean_from)
            o->clean_from = pos; /* win[pos:] is all zero now */
    }
}

/* Output bytes [p, q) (positions in the output) may not be zero. */
static inline void mark_dirty(sink_t *o, size_t p, size_t q)
{
    if (o->dirty_lo >= o->dirty_end)
        o->dirty_lo = p; /* (p is never below the start of the row being made) */
    o->dirty_end = q;
}

/* Other bytes were written up to win[end] (exclusive). */
static inline void put_bytes(sink_t *o, size_t end)
{
    if (end > o->clean_from)
        o->clean_from = end;
}

/* Hand out the completed rows, then slide the window if its room is used up (keeping the last
 * 32 KiB and the incomplete row). */
static void flush(sink_t *o)
{
    while (o->pos - o->row_start >= o->stride) {
        const uint8_t *row = o->win + o->row_start;
        size_t r0 = o->row_abs, r1 = r0 + o->stride;
        size_t lo = o->dirty_lo > r0 ? o->dirty_lo : r0, hi = o->dirty_end < r1 ? o->dirty_end
                                                                                  : r1;
        if (lo >= hi) /* the whole row is zero */
            lo = hi = r1;
        if (o->row_fn != NULL) {
            /* the possibly non-zero bytes of row[1:], as indices of row + 1 */
            size_t blo = lo > r0 + 1 ? lo - r0 - 1 : 0, bhi = hi > r0 + 1 ? hi - r0 - 1 : 0;
            int r = o->row_fn(o->ctx, o->y, row, blo, bhi > blo ? bhi : blo);
            if (r < 0) {
                *o->stop_status = r;
                o->row_fn = NULL; /* stopped: the rest of the stream is only checked */
            }
        }
        /* the Adler-32: zeros, the bytes that may not be zero, zeros */
        if (lo > r0)
            o->adler = adler_zeros(o->adler, lo - r0);
        if (hi > lo)
            o->adler = segpng_adler32(o->adler, row + (lo - r0), hi - lo);
        if (r1 > hi)
            o->adler = adler_zeros(o->adler, r1 - hi);
        o->row_start += o->stride;
        o->row_abs = r1;
        if (o->dirty_end <= r1)
            o->dirty_lo = o->dirty_end; /* no dirt left */
        else if (o->dirty_lo < r1)
            o->dirty_lo = r1;
        o->y++;
    }
    if (o->pos >= o->slide_at) {
        size_t from = o->pos > HIST ? o->pos - HIST : 0, keep, data;
        if (o->row_start < from)
            from = o->row_start;
        /* win[from:pos) moves to the start: the part below clean_from is copied, the zeros
         * after it are only written where the start does not hold zeros already */
        keep = o->pos - from;
        data = o->clean_from < from ? 0 : o->clean_from - from < keep ? o->clean_from - from
                                                                       : keep;
        memmove(o->win, o->win + from, data);
        o->pos = keep;
        o->row_start -= from;
        if (o->clean_from <= keep) { /* the rest of the window holds zeros */
            if (data < o->clean_from)
                memset(o->win + data, 0, o->clean_from - data);
            o->clean_from = data;
        } else { /* win[keep:clean_from) holds old bytes */
            memset(o->win + data, 0, keep - data);
        }
    }
}

int segpng_inflate_rows(const uint8_t *src, size_t len, size_t stride, size_t rows,
                        segpng_row_fn row_fn, void *ctx, int *stop_status)
{
    bits_t s;
    sink_t o;
    codes *cd;
    uint8_t *win;
    size_t total, cap, pos;
    size_t out = 0; /* bytes produced so far (at most total) */
    int status = SEGPNG_INFLATE_OK, last = 0, stop_dummy = 0;
    const huff *lit, *dist;

    if ((src == NULL && len > 0) || stride == 0 || rows > SIZE_MAX / stride
            || stride > SIZE_MAX / 2 - (HIST + ROOM + MAX_MATCH + OVERSHOOT))
        return SEGPNG_INFLATE_BAD_ARGUMENT;
    total = rows * stride;
    if (len < 2)
        return SEGPNG_INFLATE_TRUNCATED;
    /* zlib header: check bits, method 8, a window of at most 32 KiB, no preset dictionary */
    if (((unsigned)src[0] << 8 | src[1]) % 31 != 0 || (src[0] & 15) != 8 || (src[0] >> 4) > 7
            || (src[1] & 0x20) != 0)
        return SEGPNG_INFLATE_BAD_HEADER;
    o.slide_at = HIST + stride + ROOM;
    cap = o.slide_at + MAX_MATCH + OVERSHOOT;
    cd = malloc(sizeof(codes) + cap);
    if (cd == NULL)
        return SEGPNG_INFLATE_NO_MEMORY;
    cd->fixed_built = 0;
    win = (uint8_t *)(cd + 1);
    o.win = win;
    o.pos = o.row_start = o.y = o.row_abs = o.dirty_lo = o.dirty_end = 0;
    /* what malloc gives is not known to be zero: the bytes past slide_at are zeroed, so that
     * the first zeros written up to there make the whole window known zero */
    memset(win + o.slide_at, 0, cap - o.slide_at);
    o.clean_from = o.slide_at;
    o.stride = stride;
    o.adler = 1;
    o.row_fn = row_fn;
    o.ctx = ctx;
    o.stop_status = stop_status != NULL ? stop_status : &stop_dummy;
    s.in = src + 2;
    s.end = src + len;
    s.bitbuf = 0;
    s.bitcnt = 0;
    s.overrun = 0;
    pos = 0; /* o.pos while a block is decoded */

    while (!last) {
        unsigned type;
        REFILL();
        last = (int)BITS(1);
        type = BITS(3) >> 1;
        DROP(3);
        if (type == 0) { /* stored */
            size_t n;
            if (!rewind_bits(&s) || s.end - s.in < 4)
                FAIL(SEGPNG_INFLATE_TRUNCATED);
            n = (size_t)s.in[0] | (size_t)s.in[1] << 8;
            if (n != ((~((size_t)s.in[2] | (size_t)s.in[3] << 8)) & 0xFFFFu))
                FAIL(SEGPNG_INFLATE_BAD_DATA);
            s.in += 4;
            while (n > 0) {
                size_t k = n;
                if (s.in == s.end)
                    FAIL(SEGPNG_INFLATE_TRUNCATED);
                if (out == total)
                    FAIL(SEGPNG_INFLATE_TOO_LONG);
                if (k > (size_t)(s.end - s.in))
                    k = (size_t)(s.end - s.in);
                if (k > total - out)
                    k = total - out;
                if (k > cap - pos)
                    k = cap - pos;
                memcpy(win + pos, s.in, k);
                put_bytes(&o, pos + k);
                mark_dirty(&o, out, out + k); /* (not looked at: stored blocks are rare) */
                s.in += k;
                n -= k;
                pos += k;
                out += k;
                o.pos = pos;
                flush(&o);
                pos = o.pos;
            }
            continue;
        }
        if (type == 3)
            FAIL(SEGPNG_INFLATE_BAD_DATA);
        if (type == 1) { /* fixed codes */
            if (!cd->fixed_built) {
                unsigned i;
                for (i = 0; i < 144; i++)
                    cd->lens[i] = 8;
                for (; i < 256; i++)
                    cd->lens[i] = 9;
                for (; i < 280; i++)
                    cd->lens[i] = 7;
                for (; i < MAX_LIT; i++)
                    cd->lens[i] = 8;
                build(&cd->fixlit, cd->lens, MAX_LIT, LIT_ROOT, KIND_LIT);
                for (i = 0; i < 32; i++)
                    cd->lens[i] = 5;
                build(&cd->fixdist, cd->lens, 32, DIST_ROOT, KIND_DIST);
                cd->fixed_built = 1;
            }
            lit = &cd->fixlit;
            dist = &cd->fixdist;
        } else { /* dynamic codes */
            unsigned nlen, ndist, ncode, i, have = 0;
            nlen = BITS(5) + 257;
            DROP(5);
            ndist = BITS(5) + 1;
            DROP(5);
            ncode = BITS(4) + 4;
            DROP(4);
            if (nlen > 286 || ndist > 30)
                FAIL(SEGPNG_INFLATE_BAD_DATA);
            for (i = 0; i < 19; i++)
                cd->lens[PRE_ORDER[i]] = 0;
            for (i = 0; i < ncode; i++) {
                REFILL();
                cd->lens[PRE_ORDER[i]] = (uint8_t)BITS(3);
                DROP(3);
            }
            if (build(&cd->pre, cd->lens, 19, PRE_ROOT, KIND_PRE) != 0)
                FAIL(SEGPNG_INFLATE_BAD_DATA);
            while (have < nlen + ndist) {
                int sym;
                unsigned rep, value;
                REFILL();
                DECODE(&cd->pre, sym);
                if (sym < 16) {
                    cd->lens[have++] = (uint8_t)sym;
                    continue;
                }
                if (sym == 16) {
                    if (have == 0)
                        FAIL(SEGPNG_INFLATE_BAD_DATA);
                    value = cd->lens[have - 1];
                    rep = 3 + BITS(2);
                    DROP(2);
                } else if (sym == 17) {
                    value = 0;
                    rep = 3 + BITS(3);
                    DROP(3);
                } else {
                    value = 0;
                    rep = 11 + BITS(7);
                    DROP(7);
                }
                if (have + rep > nlen + ndist)
                    FAIL(SEGPNG_INFLATE_BAD_DATA);
                while (rep--)
                    cd->lens[have++] = (uint8_t)value;
            }
            if (cd->lens[256] == 0) /* no end-of-block code */
                FAIL(SEGPNG_INFLATE_BAD_DATA);
            if (build(&cd->lit, cd->lens, nlen, LIT_ROOT, KIND_LIT) != 0
                    || build(&cd->dist, cd->lens + nlen, ndist, DIST_ROOT, KIND_DIST) != 0)
                FAIL(SEGPNG_INFLATE_BAD_DATA);
            lit = &cd->lit;
            dist = &cd->dist;
        }
        /* the symbols of a Huffman block: pos < slide_at before each, so that a match and
         * its overshoot fit the window */
        for (;;) {
            int sym, dsym;
            size_t length, d;
            uint64_t before;
            unsigned had;
            REFILL(); /* >= 56 bits: a length and a distance take at most 48 */
            before = s.bitbuf; /* for a repeat of a match, below */
            had = s.bitcnt;
            DECODE(lit, sym);
            if (sym < 256) {
                if (out == total)
                    FAIL(SEGPNG_INFLATE_TOO_LONG);
                out++;
                if (sym != 0) {
                    win[pos] = (uint8_t)sym;
                    put_bytes(&o, pos + 1);
                    mark_dirty(&o, out - 1, out);
                } else {
                    put_zeros(&o, pos, 1);
                }
                pos++;
            } else if (sym == 256) {
                break;
            } else {
                sym -= 257;
                if (sym >= 29) /* 286, 287 */
                    FAIL(SEGPNG_INFLATE_BAD_DATA);
                length = LEN_BASE[sym] + BITS(LEN_EXTRA[sym]);
                DROP(LEN_EXTRA[sym]);
                DECODE(dist, dsym);
                if (dsym >= 30)
                    FAIL(SEGPNG_INFLATE_BAD_DATA);
                d = DIST_BASE[dsym] + BITS(DIST_EXTRA[dsym]);
                DROP(DIST_EXTRA[dsym]);
                if (d > out)
                    FAIL(SEGPNG_INFLATE_BAD_DATA); /* before the start of the output */
                if (length > total - out)
                    FAIL(SEGPNG_INFLATE_TOO_LONG);
                if (o.dirty_end <= out - d) {
                    /* a copy of zeros (its source is past the last non-zero byte). The same
                     * codes again, without extra bits, are the same copy of zeros (the source
                     * moves away from the last non-zero byte): the long runs of zeros of a
                     * mask are such repeats of (258, distance 1), counted here in one go. */
                    size_t run = length;
                    unsigned used = had - s.bitcnt; /* both codes: at most 30 bits */
                    if (LEN_EXTRA[sym] == 0 && DIST_EXTRA[dsym] == 0) {
                        uint64_t mask = ((uint64_t)1 << used) - 1, pat = before & mask;
                        while (pos + run < o.slide_at && length <= total - out - run) {
                            if (s.bitcnt < used)
                                REFILL();
                            if ((s.bitbuf & mask) != pat)
                                break;
                            DROP(used);
                            run += length;
                        }
                    }
                    put_zeros(&o, pos, run);
                    pos += run;
                    out += run;
                } else {
                    /* the bytes a copy repeats are its source's first min(d, length) */
                    if (all_zero(win + pos - d, d < length ? d : length)) {
                        put_zeros(&o, pos, length);
                    } else {
                        copy_match(win + pos, d, length);
                        put_bytes(&o, pos + length + OVERSHOOT);
                        mark_dirty(&o, out, out + length);
                    }
                    pos += length;
                    out += length;
                }
            }
            if (pos - o.row_start >= stride || pos >= o.slide_at) {
                o.pos = pos;
                flush(&o);
                pos = o.pos;
            }
        }
    }
    /* the Adler-32, at the next byte boundary */
    if (!rewind_bits(&s))
        FAIL(SEGPNG_INFLATE_TRUNCATED);
    if (out != total)
        FAIL(SEGPNG_INFLATE_TOO_SHORT);
    if (s.end - s.in < 4)
        FAIL(SEGPNG_INFLATE_TRUNCATED);
    if (((uint32_t)s.in[0] << 24 | (uint32_t)s.in[1] << 16 | (uint32_t)s.in[2] << 8
         | s.in[3]) != o.adler)
        FAIL(SEGPNG_INFLATE_BAD_ADLER);
    if (o.row_fn == NULL && row_fn != NULL)
        status = SEGPNG_INFLATE_STOPPED;
done:
    free(cd);
    return status;
}
