#!/bin/bash
# Address plan + network guard for the local single-node cluster of the e2e suite (e2e/cluster/up.sh runs it before
# anything else starts; down.sh takes it down last). Usage: net_guard.sh up|check|down|counters|cgpath
#   198.18.0.0/15   whole RFC 2544 benchmarking block -> `blackhole` route: anything not routed more specifically is dropped
#   198.18.0.0/24   pod network on bridge mpbr0 (gateway 198.18.0.1, host-local IPAM .10-.250)
#   198.18.255.1/32 apiserver/kubelet/kube-proxy bind + advertise address, on lo (this kernel has no `dummy` driver)
#   198.19.0.0/24   Service ClusterIPs (kubernetes Service = 198.19.0.1); routed onto the pod bridge mpbr0 (src
#                   198.18.0.1), so the OUTPUT-chain DNAT of kube-proxy can rewrite host->ClusterIP packets (with an
#                   `unreachable`/`blackhole` route connect() fails before netfilter sees the packet); an un-DNATed
#                   packet only ARPs on the local bridge, where nothing answers for a ClusterIP.
# nft table inet mpguard: pods may only be forwarded bridge->bridge, may only open the apiserver port and the
# Prometheus port (the operator's analysis queries) on the host, and
# no packet with a 198.18/15 source or destination may leave through any interface other than mpbr0/lo.
#   and every process of the cluster (up.sh puts itself into cgroup v2 "mpcluster"; children inherit: etcd,
#   apiserver, kubelet, containerd, shims, CNI plugins, kube-proxy, prometheus...) may send only on lo and mpbr0:
#   anything else (DNS to the VM's resolver, cloud metadata 169.254.169.254, ...) is dropped, counted and logged
#   to the kernel log with prefix "mpguard-out: ".
# iptables: one ACCEPT (mpbr0->mpbr0) in filter FORWARD, because this host's FORWARD policy is DROP.
set -euo pipefail
GUARD=198.18.0.0/15; POD_CIDR=198.18.0.0/24; POD_GW=198.18.0.1; BR=mpbr0
API_IP=198.18.255.1; SVC_CIDR=198.19.0.0/24; API_PORT=16443; PROM_PORT=19090
# cgroup v2 for the cluster's processes; nft resolves "socket cgroupv2" paths below /sys/fs/cgroup (hybrid: unified/)
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then CGREL=mpcluster; else CGREL=unified/mpcluster; fi
CG=/sys/fs/cgroup/$CGREL
IPT_RULE=(FORWARD -i $BR -o $BR -m comment --comment mp-pod-bridge -j ACCEPT)

check() {
  local def defdev defgw a r bad=0
  def=$(ip -4 route show default | head -1); defdev=$(awk '{for(i=1;i<NF;i++) if($i=="dev") print $(i+1)}' <<<"$def")
  defgw=$(awk '{for(i=1;i<NF;i++) if($i=="via") print $(i+1)}' <<<"$def")
  ip route show exact $GUARD | grep -q '^blackhole' || { echo "UNSAFE: no blackhole $GUARD"; return 1; }
  nft list table inet mpguard >/dev/null 2>&1 || { echo "UNSAFE: nft table inet mpguard missing"; return 1; }
  [ -d $CG ] || { echo "UNSAFE: cgroup $CG missing"; return 1; }
  for a in 198.18.0.1 198.18.0.77 198.18.1.1 198.18.255.1 198.18.255.2 198.19.0.1 198.19.0.200 198.19.1.1 198.19.255.254; do
    r=$(ip route get $a 2>&1 | head -1 || true)
    case "$r" in *"dev $defdev "*|*"via $defgw "*|*" via "*) echo "UNSAFE: $a -> $r"; bad=1;; esac
    echo "  ip route get $a -> $r$(case "$r" in *"Invalid argument"*) echo "  (= blackhole $GUARD)";; esac)"
  done
  for a in 198.18.0.77 198.19.0.200 198.19.1.1; do   # as seen by a forwarded packet coming from a pod
    r=$(ip route get $a from 198.18.0.10 iif $BR 2>&1 | head -1 || true)
    case "$r" in *"dev $defdev "*|*"via $defgw "*|*" via "*) echo "UNSAFE: from pod $a -> $r"; bad=1;; esac
    echo "  ip route get $a from 198.18.0.10 iif $BR -> $r$(case "$r" in *"Invalid argument"*) echo "  (= blackhole $GUARD)";; esac)"
  done
  [ $bad = 0 ] && echo "guard OK (default route: $def)"
  return $bad
}

up() {
  if ip route show exact $GUARD | grep -q .; then
    ip route show exact $GUARD | grep -q '^blackhole' || { echo "refusing: $GUARD already routed: $(ip route show exact $GUARD)"; exit 1; }
  else ip route add blackhole $GUARD; fi
  ip link show $BR >/dev/null 2>&1 || { ip link add $BR type bridge; sysctl -qw net.ipv6.conf.$BR.disable_ipv6=1; }
  ip addr replace $POD_GW/24 dev $BR; ip link set $BR up
  ip addr replace $API_IP/32 dev lo
  ip route replace $SVC_CIDR dev $BR src $POD_GW
  mkdir -p $CG
  nft -f - <<NFT
table inet mpguard
delete table inet mpguard
table inet mpguard {
  chain forward_guard {
    type filter hook forward priority -10; policy accept;
    iifname "$BR" oifname "$BR" accept
    iifname "$BR" counter drop comment "pods are forwarded only back onto their bridge"
    oifname "$BR" counter drop comment "nothing is forwarded into pods from elsewhere"
    ip saddr $GUARD counter drop
    ip daddr $GUARD counter drop
  }
  chain input_guard {
    type filter hook input priority -10; policy accept;
    iifname "$BR" ct state established,related accept
    iifname "$BR" ip daddr $API_IP tcp dport $API_PORT accept comment "pods -> apiserver (kubernetes Service DNATs here)"
    iifname "$BR" ip daddr $API_IP tcp dport $PROM_PORT accept comment "operator pod -> Prometheus on the host"
    iifname "$BR" counter drop comment "pods may open nothing else on the host"
  }
  chain output_guard {
    type filter hook output priority -10; policy accept;
    socket cgroupv2 level 1 "$CGREL" oifname != { "lo", "$BR" } counter log prefix "mpguard-out: " drop comment "cluster processes send only on lo and the pod bridge"
  }
  chain postrouting_guard {
    type filter hook postrouting priority 300; policy accept;
    oifname { "$BR", "lo" } accept
    ip saddr $GUARD counter drop comment "guard: 198.18/15 never leaves through another interface"
    ip daddr $GUARD counter drop comment "guard: 198.18/15 never leaves through another interface"
  }
}
NFT
  iptables -w -C "${IPT_RULE[@]}" 2>/dev/null || iptables -w -I "${IPT_RULE[@]:0:1}" 1 "${IPT_RULE[@]:1}"
  check
}

down() {
  while iptables -w -C "${IPT_RULE[@]}" 2>/dev/null; do iptables -w -D "${IPT_RULE[@]}"; done
  ip link del $BR 2>/dev/null || true           # takes the $SVC_CIDR route with it
  ip addr del $API_IP/32 dev lo 2>/dev/null || true
  nft delete table inet mpguard 2>/dev/null || true
  rmdir $CG 2>/dev/null || { [ -d $CG ] && echo "WARNING: $CG not empty: $(cat $CG/cgroup.procs | tr '\n' ' ')"; }
  ip route del blackhole $GUARD 2>/dev/null || true   # last
}
cgpath() { echo $CG; }
counters() { nft list table inet mpguard | grep -E "counter packets" | sed -E 's/^\s+//'; }
"${1:?up|check|down|counters|cgpath}"
