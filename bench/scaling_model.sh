#!/usr/bin/env bash
# The scaling model of docs/SCALING.md: for each model, link speed and number of machines N,
# the time of one training step with a per-rank batch of b rows, and its scaling efficiency
# (the step's compute over compute + the communication not hidden), for three reductions:
#   exact  kerac's ordered reduce-scatter + allgather (the same bits as one process): a rank
#          sends (p + 1) (N - 1)/N gradient copies, p = its partial sums (b / G row groups,
#          at least 1), in 2 (N - 1) messages
#   ring   a plain ring allreduce (any order; what Horovod and DDP do): 2 (N - 1)/N copies,
#          2 (N - 1) messages
#   exact+overlap  kerac's exact reduction in buckets started from backward (the default): the
#          last bucket's share L of the bytes waits in full; the others hide behind the
#          fraction H of the step's compute that backward still has to do once they are ready
#          (per model: MLP L = 0.6, H = 0.25 -- the first layer's weight gradient; the convnet's
#          gradient fits one 1 MB bucket: L = 1, nothing hidden)
# t = alpha * messages + bytes / bandwidth. Prints, per model, link and N, the efficiency at
# b = 32, 128, 512 and the smallest b (a multiple of G) reaching 90% (or "never": the exact
# scheme's bytes grow with b as fast as the compute).
# Inputs (measured on this machine, docs/SCALING.md): PARAMS and US_PER_SAMPLE per model,
# ALPHA_US (per-message latency), G (rows per group).
set -euo pipefail
ALPHA_US=${ALPHA_US:-30}
G=${G:-32}
MODELS=${MODELS:-"mlp:669706:${MLP_US:-12.5}:0.6:0.25 convnet:34826:${CNN_US:-95}:1:0"}
for m in $MODELS; do
    IFS=: read -r name params us last hide <<<"$m"
    for gbit in 10 25 100; do
        for n in 2 4 8 16 32 64; do
            awk -v name="$name" -v P="$params" -v us="$us" -v gb="$gbit" -v N="$n" \
                -v alpha="$ALPHA_US" -v G="$G" -v L="$last" -v H="$hide" '
            function eff(sch, b,   p, copies, comm, comp, exposed) {
                p = b / G; if (p < 1) p = 1;
                copies = sch == 1 ? 2 * f : (p + 1) * f;
                comm = alpha * msgs + copies * S / bw; comp = b * us;
                exposed = comm;
                if (sch == 2) { exposed = comm - H * comp; if (exposed < L * comm) exposed = L * comm; }
                return comp / (comp + exposed);
            }
            BEGIN {
                S = P * 4; bw = gb * 1e9 / 8 / 1e6;          # bytes per microsecond
                f = (N - 1) / N; msgs = 2 * (N - 1);
                split("32 128 512", bs, " ");
                line = sprintf("| %s | %d Gb/s | %d |", name, gb, N);
                for (sch = 0; sch < 3; sch++) {
                    for (i = 1; i <= 3; i++) {
                        b = bs[i];
                        if (sch == 2 && b != 128) continue;
                        line = line sprintf(" %.0f%% |", 100 * eff(sch, b));
                    }
                    best = "never";
                    for (b = G; b <= 65536; b += G)
                        if (eff(sch, b) >= 0.9) { best = b; break; }
                    line = line sprintf(" %s |", best);
                }
                print line;
            }'
        done
    done
done
