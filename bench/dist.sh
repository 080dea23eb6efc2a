#!/usr/bin/env bash
# Distributed training's cost on this machine (docs/PERFORMANCE.md, "Distributed training"):
# the MNIST MLP (784-512-512-10, batch 128), one epoch's training part on the first SAMPLES
# images, side by side and interleaved, REPS times each; prints each case's median seconds:
#   plain-1x2     one process, 2 threads, the usual order (no kc_distributed_init)
#   grouped-1x2   one process, 2 threads, the row-group order (group rows G)
#   mpi-2x1       mpirun -np 2, 1 thread each (the grouped order, the same bits as grouped-1x2),
#                 the gradients' reduction overlapped with backward (buckets, the default)
#   mpi-2x1-block the same with KERAC_DIST_OVERLAP=0: one blocking reduction after backward
# and for the MPI cases, from KERAC_DIST_STATS (rank 0): the step's median milliseconds and the
# share of it spent blocked on the gradients' reduction and on the losses' exchange.
# Usage: bash bench/dist.sh [BUILD] (KERAC_DATA must hold MNIST; MODEL=cnn for the convnet)
set -euo pipefail
BUILD=${1:-build}
T=$BUILD/tools/dist_fit
REPS=${REPS:-5} SAMPLES=${SAMPLES:-10240} MODEL=${MODEL:-mlp} G=${G:-32}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
args=(--model "$MODEL" --samples "$SAMPLES" --epochs 1 --batch 128)
secs() { grep '^seconds' | awk '{print $2}'; }
declare -A t step red syn
for r in $(seq "$REPS"); do
    t[plain-1x2]+="$("$T" "${args[@]}" --threads 2 2>&1 >/dev/null | secs) "
    t[grouped-1x2]+="$("$T" "${args[@]}" --threads 2 --group-rows "$G" 2>&1 >/dev/null | secs) "
    for k in mpi-2x1 mpi-2x1-block; do
        ov=1; [ $k = mpi-2x1-block ] && ov=0
        out=$(KERAC_DIST_STATS=1 KERAC_DIST_OVERLAP=$ov KERAC_GROUP_ROWS=$G timeout 300 \
              mpirun --oversubscribe -np 2 "$T" --distributed "${args[@]}" --threads 1 2>&1 >/dev/null)
        t[$k]+="$(secs <<<"$out") "
        st=$(grep 'rank 0:' <<<"$out")
        step[$k]+="$(sed -E 's/.* ([0-9.]+) ms\/step, waiting.*/\1/' <<<"$st") "
        red[$k]+="$(sed -E "s/.*reduction ([0-9.]+) ms\/step.*/\1/" <<<"$st") "
        syn[$k]+="$(sed -E "s/.*exchange ([0-9.]+) ms\/step.*/\1/" <<<"$st") "
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
base=$(echo "${t[plain-1x2]}" | median)
for k in plain-1x2 grouped-1x2 mpi-2x1 mpi-2x1-block; do
    m=$(echo "${t[$k]}" | median)
    printf '%-13s model %s G %s samples %s: median %.3f s  (x%.2f of plain-1x2)  runs: %s\n' \
        "$k" "$MODEL" "$G" "$SAMPLES" "$m" "$(echo "$m / $base" | bc -l)" "${t[$k]}"
done
for k in mpi-2x1 mpi-2x1-block; do
    s=$(echo "${step[$k]}" | median) r=$(echo "${red[$k]}" | median) y=$(echo "${syn[$k]}" | median)
    printf '%-13s rank 0 step median %.3f ms: blocked on the gradients %.3f ms (%.1f%%), on the losses %.3f ms (%.1f%%)\n' \
        "$k" "$s" "$r" "$(echo "100 * $r / $s" | bc -l)" "$y" "$(echo "100 * $y / $s" | bc -l)"
done
