#!/usr/bin/env bash
# valgrind.sh BUILD: the examples and the kerac program of a generic build (`make valgrind`:
# no -march=native, as valgrind does not emulate AVX-512; kerac then finds no AVX-512 and its
# products go to OpenBLAS) under memcheck. Any error, or a definite leak, fails its run.
# mnist_mlp trains one epoch on the first 256 training and 100 test images of
# $KERAC_DATA/mnist (skipped without it). Ends with "tests: N passed, N failed", as
# tests/run.sh does.
set -u
build=${1:-build-vg}
vg=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --suppressions=tests/valgrind.supp --num-callers=30 --quiet)
fix=tests/fixtures/cli
passed=0 failed=0 report=""

run() { # name command...
    local name=$1 t0=$SECONDS
    shift
    echo "== $name"
    # one thread: valgrind runs one thread at a time, and pools that spin for work (kerac's,
    # OpenBLAS's) then crawl (16 steps of mnist_mlp took 517 s on 2 threads)
    if KERAC_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "${vg[@]}" "$@" >"$build/vg-$name.out" 2>&1; then
        passed=$((passed + 1))
        echo "   clean ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        cat "$build/vg-$name.out"
        report+="!! $name: valgrind reported (see above)"$'\n'
    fi
}

# the first n items of an IDX file (gzipped or not), its count patched to n
idx_head() { # src dst n item_bytes header_bytes
    local cat=cat n=$3
    [[ $1 == *.gz ]] && cat=zcat
    {
        $cat "$1" | head -c 4
        printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((n >> 24 & 255)) $((n >> 16 & 255)) \
            $((n >> 8 & 255)) $((n & 255)))"
        $cat "$1" | tail -c +9 | head -c $(($5 - 8 + n * $4))
    } >"$2"
}

src=${KERAC_DATA:-}/mnist
if [ -n "${KERAC_DATA:-}" ] && [ -d "$src" ]; then
    small=$build/mnist-small
    mkdir -p "$small"
    for f in train t10k; do
        n=256
        [ $f = t10k ] && n=100
        idx_head "$(ls "$src"/$f-images-idx3-ubyte* | head -n 1)" "$small/$f-images-idx3-ubyte" $n 784 16
        idx_head "$(ls "$src"/$f-labels-idx1-ubyte* | head -n 1)" "$small/$f-labels-idx1-ubyte" $n 1 8
    done
    run mnist_mlp "$build/mnist_mlp" --data "$small" --epochs 1 --verbose 2
else
    echo "== mnist_mlp: skipped (KERAC_DATA/mnist not found)"
fi
run kerac_summary "$build/kerac" summary "$fix/digits.keras"
run kerac_summary_mlp2 "$build/kerac" summary mlp2
run kerac_predict "$build/kerac" predict "$fix/digits.keras" "$fix/test8.npy"
run kerac_predict_csv "$build/kerac" predict "$fix/digits.keras" "$fix/test8.csv"

if [ -n "$report" ]; then
    echo "==== failures"
    printf '%s' "$report"
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
