#!/usr/bin/env bash
# Stop what up.sh started and put the host back exactly as it was:
#  1. delete the workloads so kubelet tears pods down through CNI DEL (veths, IPAM, netns, portmap chains)
#  2. kill leftover containers (ctr), then our PIDs in reverse order, then the shims of our containerd
#  3. unmount what kubelet/containerd mounted under RUN
#  4. kube-proxy --cleanup (KUBE-* service chains), KUBE-*/CNI-* chains back to the snapshot taken at start, sysctls back
#  5. net_guard.sh down: iptables FORWARD accept, bridge mpbr0 (+ service route), 198.18.255.1 on lo, nft mpguard,
#     cgroup mpcluster, blackhole route
# The logs stay in RUN; the cluster's state (etcd, containerd, kubelet) is removed.
#   e2e/cluster/down.sh [RUN_DIR]     (default ${MODELPILOT_E2E_RUN:-/tmp/modelpilot-e2e}); a no-op with E2E_KUBECONFIG
set -uo pipefail
H=$(cd "$(dirname "$0")" && pwd)
[ -z "${E2E_KUBECONFIG:-}" ] || { echo "down.sh: E2E_KUBECONFIG is set; that cluster is not ours to stop"; exit 0; }
RUN=${1:-${MODELPILOT_E2E_RUN:-/tmp/modelpilot-e2e}}
[ -d "$RUN" ] || { echo "down.sh: no run folder $RUN"; exit 0; }
RUN=$(cd "$RUN" && pwd); cd "$RUN" || exit 1
[ -f cluster.env ] && . ./cluster.env
BIN=${BIN:-$("$H/build-k8s.sh")}
KUBECTL=${KUBECTL:-$("$H/tools.sh")/kubectl}
K="$KUBECTL --kubeconfig $RUN/kubeconfig --request-timeout=10s"
SOCK=$RUN/ctrd/containerd.sock
touch pids
if [ -f kubeconfig ] && $K get --raw /readyz >/dev/null 2>&1; then
  # Controllers first (the operator would recreate what it owns), then everything that makes pods.
  for _ in 1 2; do
    $K delete deploy,rs,job,sts,ds,hpa --all -A --wait=false >/dev/null 2>&1
    $K delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1
    for _ in $(seq 1 60); do [ -z "$($K get pods -A -o name 2>/dev/null)" ] && break; sleep 1; done
  done
  for _ in $(seq 1 20); do [ -z "$(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null)" ] && break; sleep 1; done
fi
if [ -S "$SOCK" ]; then   # whatever kubelet did not stop
  for t in $(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do ctr -a "$SOCK" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
fi
SHIMS=$(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" || true)
for p in $(tac pids); do kill "$p" 2>/dev/null; done
sleep 2
for p in $SHIMS; do kill "$p" 2>/dev/null; done
sleep 1; for p in $(cat pids) $SHIMS; do kill -9 "$p" 2>/dev/null; done
for p in $(cat pids); do while kill -0 "$p" 2>/dev/null; do sleep 0.2; done; done
: > pids
# kubelet bind-mounts / tmpfs (secrets), containerd rootfs overlays and netns files: unmount what is left under RUN
for _ in 1 2 3; do mount | awk -v r="$RUN/" 'index($3, r) == 1 {print $3}' | sort -r | xargs -r -n1 umount 2>/dev/null; done
left=$(mount | awk -v r="$RUN/" 'index($3, r) == 1' | wc -l); [ "$left" = 0 ] || echo "WARNING: $left mounts left under $RUN"
"$BIN/kube-proxy" --cleanup > kube-proxy-cleanup.log 2>&1 || true
# kube-proxy --cleanup also deletes kubelet's KUBE-POSTROUTING etc. and leaves KUBE-PROXY-CANARY: put every KUBE-*/CNI-*
# chain (and the jumps to them) back exactly as they were before start (CNI portmap chains included)
[ -d ipt.before ] && python3 "$H/ipt_snapshot.py" restore ipt.before
[ -f sysctl.saved ] && sysctl -q -p sysctl.saved
if nft list table inet mpguard >/dev/null 2>&1; then
  echo "guard counters at stop (drops = packets that tried to leave):"; "$H/net_guard.sh" counters | sed 's/^/  /'
  "$H/net_guard.sh" counters > guard-counters.txt
fi
"$H/net_guard.sh" down
[ "$left" = 0 ] && rm -rf etcd ctrd kubelet cni-ipam prom/data models
echo "stopped; links: $(ip -br link | awk '{print $1}' | tr '\n' ' ')"
