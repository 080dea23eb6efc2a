#!/usr/bin/env bash
# Runs each Criterion test binary given twice: with kerac's own matrix-product kernels, then
# with the OpenBLAS path that CPUs without AVX-512 take (KERAC_GEMM_BLAS=1). Ends with one
# line counting every test of both passes: "tests: N passed, N failed". Exits non-zero if any
# test failed or any binary crashed.
set -u
passed=0 failed=0 broken=0
for blas in "" 1; do
    for bin in "$@"; do
        echo "== $bin${blas:+ (KERAC_GEMM_BLAS=1)}"
        out=$(KERAC_GEMM_BLAS=$blas "$bin" --jobs 1 2>&1); rc=$?
        printf '%s\n' "$out"
        line=$(printf '%s\n' "$out" | sed 's/\x1b\[[0-9;]*m//g' | grep 'Synthesis: Tested:' | tail -n 1)
        if [ -z "$line" ]; then broken=$((broken + 1)); echo "!! $bin ended without a synthesis (rc $rc)"; continue; fi
        p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
        f=$(sed -E 's/.*Failing: ([0-9]+).*Crashing: ([0-9]+).*/\1 \2/' <<<"$line")
        passed=$((passed + p)); failed=$((failed + ${f% *} + ${f#* }))
        [ "$rc" -eq 0 ] || [ "${f% *}${f#* }" != "00" ] || broken=$((broken + 1))
    done
done
echo "tests: $passed passed, $((failed + broken)) failed"
[ "$failed" -eq 0 ] && [ "$broken" -eq 0 ]
