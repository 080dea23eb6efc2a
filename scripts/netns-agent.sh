#!/bin/sh
# Open MPI's launch agent (plm_rsh_agent) between the namespaces of scripts/two-hosts.sh, in
# place of ssh: called as "agent [ssh options] HOST COMMAND...", runs COMMAND in HOST's namespace.
while [ $# -gt 0 ]; do
    case $1 in -*) shift ;; *) break ;; esac
done
host=$1
shift
case $host in
10.77.0.1 | kerac-h1) ns=kerac-h1 ;;
10.77.0.2 | kerac-h2) ns=kerac-h2 ;;
*) echo "netns-agent: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" /bin/sh -c "$*"
