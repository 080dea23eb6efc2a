#!/usr/bin/env bash
# Two "machines" on this one: two network namespaces joined by a veth pair, Open MPI over TCP
# between them (docs/SCALING.md, "Two hosts"). As root.
#   bash scripts/two-hosts.sh up                  create kerac-h1 (10.77.0.1) and kerac-h2 (10.77.0.2)
#   bash scripts/two-hosts.sh run NP PROGRAM ARGS  mpirun from kerac-h1, ranks alternating between the hosts
#   bash scripts/two-hosts.sh down                remove them
# mpirun starts its daemon on the other host through scripts/netns-agent.sh (in place of ssh),
# and the ranks talk over TCP on the veth pair only (btl self,tcp; no shared memory between hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
H1=kerac-h1 H2=kerac-h2 IP1=10.77.0.1 IP2=10.77.0.2
case ${1:-} in
up)
    ip netns list | grep -qw "$H1" && { echo "two-hosts: already up"; exit 0; }
    ip netns add "$H1"
    ip netns add "$H2"
    ip link add kerac-v1 type veth peer name kerac-v2
    ip link set kerac-v1 netns "$H1"
    ip link set kerac-v2 netns "$H2"
    ip -n "$H1" addr add "$IP1/24" dev kerac-v1
    ip -n "$H2" addr add "$IP2/24" dev kerac-v2
    for h in "$H1" "$H2"; do ip -n "$h" link set lo up; done
    ip -n "$H1" link set kerac-v1 up
    ip -n "$H2" link set kerac-v2 up
    echo "two-hosts: $H1 $IP1 <-> $H2 $IP2"
    ;;
down)
    ip netns del "$H1" 2>/dev/null || true
    ip netns del "$H2" 2>/dev/null || true
    ;;
run)
    shift
    np=$1
    shift
    # one slot per rank on each host: np ranks placed round-robin, rank r on host r % 2
    slots=$(((np + 1) / 2))
    pass=(-x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM)
    for v in KERAC_DATA KERAC_NUM_THREADS KERAC_ISA; do [ -n "${!v:-}" ] && pass+=(-x "$v"); done
    exec ip netns exec "$H1" env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        mpirun -np "$np" --host "$IP1:$slots,$IP2:$slots" --map-by node --oversubscribe \
        --mca plm_rsh_agent "$PWD/scripts/netns-agent.sh" \
        --mca btl self,tcp --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
        "${pass[@]}" --wdir "$PWD" "$@"
    ;;
*)
    sed -n '2,9p' "$0"
    exit 2
    ;;
esac
