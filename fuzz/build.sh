#!/bin/sh
# Build the native PNG fuzz target (fuzz_png.c) against segeval/core/kernels/native/.
#
#   fuzz/build.sh [standalone|libfuzzer|corpus|all]   (default: all)
#
# standalone  gcc (or $CC) with AddressSanitizer + UndefinedBehaviorSanitizer, any error
#             fatal, linked with the replay-and-mutate driver standalone.c:
#             $OUT/fuzz_png_standalone CORPUS_DIR ITERATIONS [SEED]
# libfuzzer   clang-14 (or $CLANG) with -fsanitize=fuzzer,address,undefined:
#             $OUT/fuzz_png_libfuzzer [libFuzzer options] CORPUS_DIR...
# corpus      rewrite the seed corpus fuzz/corpus/ (python3 fuzz/make_corpus.py)
#
# ZLIB=1 adds -DSEGPNG_FUZZ_ZLIB -lz: the streaming inflater is then checked against zlib's
# inflate on every stream (needs zlib.h and libz).
#
# OUT defaults to fuzz/build/ (git-ignored); NATIVE (the kernel sources) to
# segeval/core/kernels/native/.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
NATIVE=${NATIVE:-"$HERE/../segeval/core/kernels/native"}
OUT=${OUT:-"$HERE/build"}
SOURCES="$NATIVE/png_filters.c $NATIVE/png_passes.c $NATIVE/png_chunks.c $NATIVE/png_inflate.c"
FLAGS="-std=c99 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-function -I$NATIVE"
LIBS=""
if [ "${ZLIB:-0}" = 1 ]; then
    FLAGS="$FLAGS -DSEGPNG_FUZZ_ZLIB"
    LIBS="-lz"
fi
mkdir -p "$OUT"

standalone() {
    # shellcheck disable=SC2086
    ${CC:-gcc} $FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all \
        "$HERE/fuzz_png.c" "$HERE/standalone.c" $SOURCES $LIBS -o "$OUT/fuzz_png_standalone"
    echo "built $OUT/fuzz_png_standalone"
}

libfuzzer() {
    # shellcheck disable=SC2086
    ${CLANG:-clang-14} $FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        "$HERE/fuzz_png.c" $SOURCES $LIBS -o "$OUT/fuzz_png_libfuzzer"
    echo "built $OUT/fuzz_png_libfuzzer"
}

case "${1:-all}" in
    standalone) standalone ;;
    libfuzzer) libfuzzer ;;
    corpus) python3 "$HERE/make_corpus.py" "$HERE/corpus" ;;
    all) standalone; libfuzzer ;;
    *) echo "usage: $0 [standalone|libfuzzer|corpus|all]" >&2; exit 2 ;;
esac
