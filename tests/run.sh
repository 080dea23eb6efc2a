#!/usr/bin/env bash
# Runs each Criterion test binary given, then prints one closing line over all of them:
# "tests: N passed, N failed". Exits non-zero if any test failed or any binary crashed.
set -u
passed=0 failed=0 broken=0
for bin in "$@"; do
    echo "== $bin"
    out=$("$bin" --jobs 1 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | sed 's/\x1b\[[0-9;]*m//g' | grep 'Synthesis: Tested:' | tail -n 1)
    if [ -z "$line" ]; then broken=$((broken + 1)); echo "!! $bin ended without a synthesis (rc $rc)"; continue; fi
    p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failing: ([0-9]+).*Crashing: ([0-9]+).*/\1 \2/' <<<"$line")
    passed=$((passed + p)); failed=$((failed + ${f% *} + ${f#* }))
    [ "$rc" -eq 0 ] || [ "${f% *}${f#* }" != "00" ] || broken=$((broken + 1))
done
echo "tests: $passed passed, $((failed + broken)) failed"
[ "$failed" -eq 0 ] && [ "$broken" -eq 0 ]
