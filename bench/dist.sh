#!/usr/bin/env bash
# Distributed training's cost on this machine (docs/PERFORMANCE.md, "Distributed training"):
# the MNIST MLP (784-512-512-10, batch 128), one epoch's training part on the first SAMPLES
# images, side by side and interleaved, REPS times each; prints each case's median seconds:
#   plain-1x2     one process, 2 threads, the usual order (no kc_distributed_init)
#   grouped-1x2   one process, 2 threads, the row-group order (group rows G)
#   mpi-2x1       mpirun -np 2, 1 thread each (the grouped order, the same bits as grouped-1x2)
# Usage: bash bench/dist.sh [BUILD] (KERAC_DATA must hold MNIST; MODEL=cnn for the convnet)
set -euo pipefail
BUILD=${1:-build}
T=$BUILD/tools/dist_fit
REPS=${REPS:-5} SAMPLES=${SAMPLES:-10240} MODEL=${MODEL:-mlp} G=${G:-32}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
args=(--model "$MODEL" --samples "$SAMPLES" --epochs 1 --batch 128)
secs() { grep '^seconds' | awk '{print $2}'; }
declare -A t
for r in $(seq "$REPS"); do
    t[plain-1x2]+="$("$T" "${args[@]}" --threads 2 2>&1 >/dev/null | secs) "
    t[grouped-1x2]+="$("$T" "${args[@]}" --threads 2 --group-rows "$G" 2>&1 >/dev/null | secs) "
    t[mpi-2x1]+="$(KERAC_GROUP_ROWS=$G timeout 300 mpirun --oversubscribe -np 2 "$T" --distributed "${args[@]}" --threads 1 2>&1 >/dev/null | secs) "
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
base=$(echo "${t[plain-1x2]}" | median)
for k in plain-1x2 grouped-1x2 mpi-2x1; do
    m=$(echo "${t[$k]}" | median)
    printf '%-12s model %s G %s samples %s: median %.3f s  (x%.2f of plain-1x2)  runs: %s\n' \
        "$k" "$MODEL" "$G" "$SAMPLES" "$m" "$(echo "$m / $base" | bc -l)" "${t[$k]}"
done
