#!/usr/bin/env bash
# Runs each libFuzzer harness given for $FUZZ_SECONDS on its committed seeds (fuzz/corpus/NAME,
# read only) plus the inputs it found before ($FUZZ_BUILD/corpus/NAME, where new ones go).
# A crash, leak, timeout (10 s) or OOM (2 GiB) leaves the input in $FUZZ_BUILD/artifacts/ and
# makes the script fail after the other harnesses have run. One summary line per harness.
set -u
cd "$(dirname "$0")/.."
B=${FUZZ_BUILD:-build-fuzz}
S=${FUZZ_SECONDS:-60}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
max_len() {
    case $1 in
        fuzz_h5|fuzz_keras_zip) echo 65536 ;;
        fuzz_image) echo 32768 ;;
        *) echo 8192 ;;
    esac
}
# FUZZ_HDF5_FORK=1 runs the two harnesses that reach HDF5 reading in fork mode, where a timeout,
# OOM or crash is recorded in artifacts/ and fuzzing goes on, each crash then run again and
# listed as known when its first frame lies in libhdf5 (the mode used before kerac's own reader,
# src/io/h5lite.c, replaced libhdf5 for loading; fuzz/findings/README.md). By default they run
# like the others: loading no longer reaches libhdf5.
extra_flags() {
    case $1 in
        fuzz_h5|fuzz_keras_zip)
            [ "${FUZZ_HDF5_FORK:-0}" = 1 ] && echo "-fork=1 -ignore_timeouts=1 -ignore_ooms=1 -ignore_crashes=1 -detect_leaks=0" ;;
    esac
}
# FUZZ_RUNS=N (make fuzz-ci): N inputs from seed 1 on the committed corpus alone, new inputs in a
# scratch folder: the same run wherever it runs, so CI repeats what was run here
budget_flags() {
    if [ -n "${FUZZ_RUNS:-}" ]; then echo "-runs=$FUZZ_RUNS -seed=1"; else echo "-max_total_time=$S"; fi
}
# where a crash input's first frame outside the sanitizer runtime and libc lies
crash_site() {
    timeout 60 "$B/$1" -runs=1 "$2" 2>&1 | grep -E '^ +#[0-9]+ 0x' |
        grep -vE 'interceptor|sanitizer|__asan|libc\.so|/string/|multiarch|libFuzzer|fuzzer::' |
        head -n 1
}
failed=""
summary=""
mkdir -p "$B/artifacts"
for h in "$@"; do
    mkdir -p "$B/corpus/$h"
    log="$B/$h.log"
    touch "$log.start"
    first="$B/corpus/$h"
    if [ -n "${FUZZ_RUNS:-}" ]; then first="$B/scratch/$h"; rm -rf "$first"; mkdir -p "$first"; fi
    echo "== $h: $(budget_flags "$h")"
    "$B/$h" $(budget_flags "$h") -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$h")" \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$h-" $(extra_flags "$h") \
        "$first" "fuzz/corpus/$h" >"$log" 2>&1
    rc=$?
    if [ -n "$(extra_flags "$h")" ]; then
        for a in "$B/artifacts/$h-crash-"*; do
            [ -s "$a" ] && [ "$a" -nt "$log.start" ] || continue
            site=$(crash_site "$h" "$a")
            if grep -q libhdf5 <<<"$site"; then
                echo "known (libhdf5): $a:$site"
            else
                echo "NEW crash: $a:$site"
                rc=1
            fi
        done
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    rate=$(grep -o 'exec/s:* [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
    # fork mode prints "#N: cov: ..." lines instead of the final stats
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
    line="$h: rc $rc, ${execs:-?} executions, ${rate:-?} exec/s"
    summary+="$line"$'\n'
    if [ "$rc" -ne 0 ]; then
        failed+=" $h"
        grep -E 'ERROR: |SUMMARY: |runtime error|Test unit written' "$log" | head -n 20
    fi
done
printf '%s' "$summary"
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed (inputs in $B/artifacts/, logs in $B/*.log)"
    exit 1
fi
echo "fuzz: all harnesses ran clean"
