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
# libhdf5 (until kerac's own HDF5 reader replaces it for loading) hangs, leaks and reads out of
# bounds on some damaged files (fuzz/findings/README.md): the two harnesses that reach it run in
# fork mode, where a timeout, OOM or crash is recorded in artifacts/ and fuzzing goes on, and
# without leak checks. Each crash is then run again: one whose first frame past the sanitizer
# and libc lies in libhdf5 is listed as known; any other fails. FUZZ_HDF5_STRICT=1 runs them
# like the others.
extra_flags() {
    case $1 in
        fuzz_h5|fuzz_keras_zip)
            [ "${FUZZ_HDF5_STRICT:-0}" = 1 ] || echo "-fork=1 -ignore_timeouts=1 -ignore_ooms=1 -ignore_crashes=1 -detect_leaks=0" ;;
    esac
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
    echo "== $h: $S s"
    "$B/$h" -max_total_time="$S" -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$h")" \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$h-" $(extra_flags "$h") \
        "$B/corpus/$h" "fuzz/corpus/$h" >"$log" 2>&1
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
