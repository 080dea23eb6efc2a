#!/usr/bin/env bash
# The scaling model of docs/SCALING.md: for each model, link speed and number of machines N,
# the time of one training step with a per-rank batch of b rows, and its scaling efficiency
# (the step's compute over compute + communication: no overlap yet), for two reductions:
#   exact  kerac's ordered reduce-scatter + allgather (the same bits as one process): a rank
#          sends (p + 1) (N - 1)/N gradient copies, p = its partial sums (b / G row groups,
#          at least 1), in 2 (N - 1) messages
#   ring   a plain ring allreduce (any order; what Horovod and DDP do): 2 (N - 1)/N copies,
#          2 (N - 1) messages
# t = alpha * messages + bytes / bandwidth. Prints, per model, link and N, the efficiency at
# b = 32, 128, 512 and the smallest b (a multiple of G) reaching 90% (or "never": the exact
# scheme's bytes grow with b as fast as the compute).
# Inputs (measured on this machine, docs/SCALING.md): PARAMS and US_PER_SAMPLE per model,
# ALPHA_US (per-message latency), G (rows per group).
set -euo pipefail
ALPHA_US=${ALPHA_US:-30}
G=${G:-32}
MODELS=${MODELS:-"mlp:669706:${MLP_US:-12.5} convnet:34826:${CNN_US:-95}"}
for m in $MODELS; do
    IFS=: read -r name params us <<<"$m"
    for gbit in 10 25 100; do
        for n in 2 4 8 16 32 64; do
            awk -v name="$name" -v P="$params" -v us="$us" -v gb="$gbit" -v N="$n" \
                -v alpha="$ALPHA_US" -v G="$G" 'BEGIN {
                S = P * 4; bw = gb * 1e9 / 8 / 1e6;          # bytes per microsecond
                f = (N - 1) / N; msgs = 2 * (N - 1);
                split("32 128 512", bs, " ");
                line = sprintf("| %s | %d Gb/s | %d |", name, gb, N);
                for (sch = 0; sch < 2; sch++) {
                    for (i = 1; i <= 3; i++) {
                        b = bs[i]; p = b / G; if (p < 1) p = 1;
                        copies = sch == 0 ? (p + 1) * f : 2 * f;
                        comm = alpha * msgs + copies * S / bw; comp = b * us;
                        line = line sprintf(" %.0f%% |", 100 * comp / (comp + comm));
                    }
                    best = "never";
                    for (b = G; b <= 65536; b += G) {
                        p = b / G; copies = sch == 0 ? (p + 1) * f : 2 * f;
                        comm = alpha * msgs + copies * S / bw; comp = b * us;
                        if (comp >= 0.9 * (comp + comm)) { best = b; break; }
                    }
                    line = line sprintf(" %s |", best);
                }
                print line;
            }'
        done
    done
done
