/* A main() for fuzz targets, for compilers without libFuzzer (gcc): replays every file of a
 * corpus folder, then runs N inputs made by deterministic random mutations of the corpus
 * (bit flips, byte values, inserted, deleted and repeated ranges, splices of two files,
 * truncation; header bytes are mutated more often). Any failure aborts (the sanitizers, or the
 * target's own checks); a clean run prints what it ran and exits 0.
 *
 *   standalone CORPUS_DIR ITERATIONS [SEED]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 8192

typedef struct {
    uint8_t *data;
    size_t size;
} blob;

static uint64_t state = 0x9E3779B97F4A7C15u;

static uint64_t next(void) /* xorshift64* */
{
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Du;
}

static size_t below(size_t n) { return n ? (size_t)(next() % n) : 0; }

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static blob read_file(const char *path)
{
    blob b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    long n;
    if (f == NULL)
        return b;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        b.data = malloc(n ? (size_t)n : 1);
        if (b.data != NULL && fread(b.data, 1, (size_t)n, f) == (size_t)n)
            b.size = (size_t)n;
    }
    fclose(f);
    return b;
}

/* One mutation of buf[0:*size) in place (capacity MAX_INPUT). */
static void mutate(uint8_t *buf, size_t *size, const blob *corpus, size_t n_corpus)
{
    size_t n = *size, at, len, i;
    switch (below(8)) {
    case 0: /* flip a bit */
        if (n)
            buf[below(n)] ^= (uint8_t)(1u << below(8));
        break;
    case 1: /* a header byte (the first 10 bytes drive the target's sizes and flags) */
        if (n < 10) {
            memset(buf + n, 0, 10 - n);
            n = 10;
        }
        buf[below(10)] = (uint8_t)next();
        break;
    case 2: /* an interesting byte value */
        if (n) {
            static const uint8_t VALUES[] = {0, 1, 2, 3, 4, 5, 0x7F, 0x80, 0xFF, 0xFE};
            buf[below(n)] = VALUES[below(sizeof VALUES)];
        }
        break;
    case 3: /* insert random bytes */
        len = 1 + below(16);
        if (n + len <= MAX_INPUT) {
            at = below(n + 1);
            memmove(buf + at + len, buf + at, n - at);
            for (i = 0; i < len; i++)
                buf[at + i] = (uint8_t)next();
            n += len;
        }
        break;
    case 4: /* delete a range */
        if (n) {
            at = below(n);
            len = 1 + below(n - at);
            memmove(buf + at, buf + at + len, n - at - len);
            n -= len;
        }
        break;
    case 5: /* repeat a range */
        if (n) {
            at = below(n);
            len = 1 + below(n - at < 64 ? n - at : 64);
            if (n + len <= MAX_INPUT) {
                memmove(buf + at + 2 * len, buf + at + len, n - at - len);
                memcpy(buf + at + len, buf + at, len);
                n += len;
            }
        }
        break;
    case 6: /* splice: the tail of another corpus file */
        if (n_corpus) {
            const blob *other = &corpus[below(n_corpus)];
            size_t from = below(other->size + 1);
            at = below(n + 1);
            len = other->size - from;
            if (at + len > MAX_INPUT)
                len = MAX_INPUT - at;
            memcpy(buf + at, other->data + from, len);
            n = at + len;
        }
        break;
    default: /* truncate */
        n = below(n + 1);
        break;
    }
    *size = n;
}

int main(int argc, char **argv)
{
    DIR *dir;
    struct dirent *entry;
    char **names = NULL;
    blob *corpus = NULL;
    size_t n_names = 0, n_corpus = 0, i, size;
    unsigned long iterations, k;
    uint8_t *buf;
    if (argc < 3) {
        fprintf(stderr, "usage: %s CORPUS_DIR ITERATIONS [SEED]\n", argv[0]);
        return 2;
    }
    iterations = strtoul(argv[2], NULL, 10);
    if (argc > 3)
        state ^= strtoull(argv[3], NULL, 10) * 0xD1B54A32D192ED03u + 1;
    dir = opendir(argv[1]);
    if (dir == NULL) {
        fprintf(stderr, "%s: cannot open the corpus folder %s\n", argv[0], argv[1]);
        return 2;
    }
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        names = realloc(names, (n_names + 1) * sizeof(char *));
        names[n_names] = malloc(strlen(argv[1]) + strlen(entry->d_name) + 2);
        sprintf(names[n_names], "%s/%s", argv[1], entry->d_name);
        n_names++;
    }
    closedir(dir);
    if (n_names)
        qsort(names, n_names, sizeof(char *), by_name); /* a reproducible order */
    corpus = calloc(n_names ? n_names : 1, sizeof(blob));
    for (i = 0; i < n_names; i++) {
        blob b = read_file(names[i]);
        free(names[i]);
        if (b.data == NULL)
            continue;
        if (b.size > MAX_INPUT)
            b.size = MAX_INPUT;
        LLVMFuzzerTestOneInput(b.data, b.size);
        corpus[n_corpus++] = b;
    }
    free(names);
    buf = malloc(MAX_INPUT);
    for (k = 0; k < iterations; k++) {
        uint8_t *input;
        unsigned m, rounds = 1 + (unsigned)below(4);
        if (n_corpus) {
            const blob *base = &corpus[below(n_corpus)];
            memcpy(buf, base->data, base->size);
            size = base->size;
        } else {
            size = 0;
        }
        for (m = 0; m < rounds; m++)
            mutate(buf, &size, corpus, n_corpus);
        /* an exact-size copy, so that AddressSanitizer sees a read past the input */
        input = malloc(size ? size : 1);
        memcpy(input, buf, size);
        LLVMFuzzerTestOneInput(input, size);
        free(input);
    }
    printf("standalone: replayed %zu corpus files, ran %lu mutated inputs\n", n_corpus,
           iterations);
    for (i = 0; i < n_corpus; i++)
        free(corpus[i].data);
    free(corpus);
    free(buf);
    return 0;
}
