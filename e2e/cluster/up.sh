#!/usr/bin/env bash
# Bring up the local single-node Kubernetes v1.20.2 of the e2e suite, with pod networking, Service routing, the
# project's images loaded into the node and a real Prometheus discovering the pods. Every address is local to this
# machine, and the network guard (net_guard.sh) is installed and verified BEFORE any component starts.
#
#   e2e/cluster/up.sh [RUN_DIR]     (default ${MODELPILOT_E2E_RUN:-/tmp/modelpilot-e2e}); e2e/cluster/down.sh undoes it
#
# Writes RUN_DIR/kubeconfig (admin) and RUN_DIR/cluster.env (KUBECONFIG, PROMETHEUS_URL, image names, MODELS: the
# hostPath folder of the example models, ...) and prints the path of cluster.env on stdout; progress goes to stderr.
# If E2E_KUBECONFIG is set, nothing is started: that cluster is used as it is (the images must be reachable by it).
#
# Components: etcd 3.4 (Debian) + kube-apiserver/controller-manager/scheduler/kubelet/kube-proxy (built from Debian's
# kubernetes source package, build-k8s.sh) + containerd 1.6 CRI + CNI bridge (Debian containernetworking-plugins) +
# kube-proxy in iptables mode + Prometheus 2.42 (Debian) fed by prom/k8s_http_sd.py (HTTP service discovery).
# Address plan (net_guard.sh): pods 198.18.0.0/24 on bridge mpbr0; API server, kubelet, kube-proxy and Prometheus on
# 198.18.255.1 (on lo); Service ClusterIPs 198.19.0.0/24; the whole 198.18.0.0/15 is a blackhole otherwise. Every
# process started here runs in cgroup mpcluster, whose packets may leave only through lo and mpbr0.
# kubelet 1.20 asks the cloud metadata address at start unless AWS_EC2_METADATA_DISABLED=true: it is always set, and
# kubelet starts only after `net_guard.sh check` passed.
# Needs root and: etcd-server containerd runc containernetworking-plugins iptables nftables conntrack prometheus
# (plus docker.io debootstrap gcc for images.sh).
set -euo pipefail
H=$(cd "$(dirname "$0")" && pwd)
if [ -n "${E2E_KUBECONFIG:-}" ]; then
  echo "up.sh: E2E_KUBECONFIG is set; using that cluster, nothing started" >&2
  exit 0
fi
RUN=${1:-${MODELPILOT_E2E_RUN:-/tmp/modelpilot-e2e}}
exec 3>&1 1>&2   # progress to stderr, the answer to stdout (fd 3: closed for every daemon, or a caller
                 # reading our stdout would wait for them)
API_IP=198.18.255.1; API_PORT=16443; POD_CIDR=198.18.0.0/24; SVC_CIDR=198.19.0.0/24; BR=mpbr0
PROM_PORT=19090; SD_PORT=19091
T0=$(date +%s.%N)
el() { echo "$(date +%s.%N) - $T0" | bc | xargs printf '%.1f'; }
say() { echo "up: [$(el)s] $*"; }
waitfor() { local what=$1; shift; for _ in $(seq 1 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.3; done
  echo "up.sh: timeout waiting for $what (logs in $RUN)"; exit 1; }

if [ -f "$RUN/pids" ] && [ -n "$(for p in $(cat "$RUN/pids"); do kill -0 "$p" 2>/dev/null && echo "$p"; done)" ]; then
  if [ -f "$RUN/cluster.env" ] && "$H/net_guard.sh" check >/dev/null 2>&1; then
    echo "up.sh: reusing the cluster running from $RUN (e2e/cluster/down.sh $RUN stops it)"
    echo "$RUN/cluster.env" >&3; exit 0
  fi
  echo "up.sh: a cluster is half up in $RUN (e2e/cluster/down.sh $RUN first)"; exit 1
fi
if ip link show $BR >/dev/null 2>&1 || nft list table inet mpguard >/dev/null 2>&1; then
  echo "up.sh: $BR or nft table mpguard already exist: another local cluster is up on this machine"; exit 1
fi
for m in $(mount | awk -v r="$RUN/" 'index($3, r) == 1 {print $3}'); do
  echo "up.sh: $m is still mounted from an earlier run (e2e/cluster/down.sh $RUN)"; exit 1
done

# --- binaries, tools, images (cached; built on first use) -----------------------------------------------------------
BIN=${MODELPILOT_K8S_BIN:-$("$H/build-k8s.sh")}
TOOLS=$("$H/tools.sh"); KUBECTL=$TOOLS/kubectl
eval "$("$H/images.sh")"
say "binaries, tools and images ready"

rm -rf "$RUN"; mkdir -p "$RUN"/{etcd,certs,ctrd/cni,kubelet,cni-ipam,prom/data}; RUN=$(cd "$RUN" && pwd); cd "$RUN"; : > pids
# sysctls that kubelet / kube-proxy may change (kube-proxy sets route_localnet=1): saved here, restored by down.sh
for k in net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward vm.overcommit_memory \
  vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
  echo "$k=$(sysctl -n $k)"; done > sysctl.saved
python3 "$H/ipt_snapshot.py" save "$RUN/ipt.before"   # down.sh restores KUBE-*/CNI-* chains to this
"$H/net_guard.sh" up > net_guard.log || { cat net_guard.log; echo "network guard failed, nothing started"; exit 1; }
CG=$("$H/net_guard.sh" cgpath)
echo $$ > "$CG/cgroup.procs"     # this script and everything it starts: egress only on lo / mpbr0
say "network guard up"

openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$TOKEN,admin,admin,\"system:masters\"" > tokens.csv; chmod 600 tokens.csv
cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters: [{name: modelpilot-e2e, cluster: {server: "https://$API_IP:$API_PORT", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: $TOKEN}}]
contexts: [{name: modelpilot-e2e, context: {cluster: modelpilot-e2e, user: admin, namespace: default}}]
current-context: modelpilot-e2e
KC
chmod 600 kubeconfig
K="$KUBECTL --kubeconfig $RUN/kubeconfig"
etcd --name n1 --data-dir etcd --listen-client-urls http://127.0.0.1:22379 --advertise-client-urls http://127.0.0.1:22379 \
  --listen-peer-urls http://127.0.0.1:22380 --initial-advertise-peer-urls http://127.0.0.1:22380 \
  --initial-cluster n1=http://127.0.0.1:22380 > etcd.log 2>&1 3>&- & echo $! >> pids
# apiserver binds ONLY 198.18.255.1 (on lo) and advertises it -> endpoints of Service default/kubernetes (198.19.0.1:443).
# Node,RBAC: the chart's RBAC is what the operator gets.
"$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:22379 --bind-address=$API_IP --advertise-address=$API_IP \
  --secure-port=$API_PORT --insecure-port=0 --cert-dir=certs --token-auth-file=tokens.csv --authorization-mode=Node,RBAC \
  --service-cluster-ip-range=$SVC_CIDR --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file=sa.pub --service-account-signing-key-file=sa.key --api-audiences=https://kubernetes.default.svc \
  --kubelet-preferred-address-types=InternalIP --anonymous-auth=false --profiling=false > apiserver.log 2>&1 3>&- & echo $! >> pids
waitfor apiserver curl -skf -H "Authorization: Bearer $TOKEN" https://$API_IP:$API_PORT/readyz
say "apiserver ready"
"$BIN/kube-controller-manager" --kubeconfig=kubeconfig --leader-elect=false --bind-address=127.0.0.1 --port=0 --secure-port=0 \
  --controllers=garbagecollector,deployment,replicaset,namespace,horizontalpodautoscaling,serviceaccount,serviceaccount-token,endpoint,endpointslice,endpointslicemirroring,clusterrole-aggregation \
  --horizontal-pod-autoscaler-sync-period=5s --use-service-account-credentials=false \
  --service-account-private-key-file=sa.key --root-ca-file=certs/apiserver.crt > kcm.log 2>&1 3>&- & echo $! >> pids
"$BIN/kube-scheduler" --kubeconfig=kubeconfig --leader-elect=false --bind-address=127.0.0.1 --port=0 --secure-port=0 \
  > scheduler.log 2>&1 3>&- & echo $! >> pids
# containerd CRI with the CNI bridge network. No default route in pods: only 198.18.0.0/15 via the bridge gateway.
containerd config default | sed -e "s#^root = .*#root = \"$RUN/ctrd/root\"#" -e "s#^state = .*#state = \"$RUN/ctrd/state\"#" \
  -e "s#  address = \"/run/containerd/containerd.sock\"#  address = \"$RUN/ctrd/containerd.sock\"#" \
  -e "s#sandbox_image = .*#sandbox_image = \"$PAUSE_IMAGE\"#" -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \
  -e 's#netns_mounts_under_state_dir = false#netns_mounts_under_state_dir = true#' -e 's#bin_dir = "/opt/cni/bin"#bin_dir = "/usr/lib/cni"#' \
  -e "s#conf_dir = \"/etc/cni/net.d\"#conf_dir = \"$RUN/ctrd/cni\"#" > ctrd/config.toml
cat > ctrd/cni/10-mppods.conflist <<CNI
{
  "cniVersion": "0.4.0",
  "name": "mppods",
  "plugins": [
    {"type": "bridge", "bridge": "$BR", "isGateway": true, "isDefaultGateway": false, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$RUN/cni-ipam",
              "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "198.18.0.10", "rangeEnd": "198.18.0.250", "gateway": "198.18.0.1"}]],
              "routes": [{"dst": "198.18.0.0/15"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CNI
containerd --config ctrd/config.toml > containerd.log 2>&1 3>&- & echo $! >> pids
waitfor containerd test -S ctrd/containerd.sock
for t in "$PAUSE_TAR" "$OPERATOR_TAR" "$SERVER_TAR"; do
  ctr -a ctrd/containerd.sock -n k8s.io images import "$t" >/dev/null
done
say "images imported into containerd: $(ctr -a ctrd/containerd.sock -n k8s.io images ls -q | grep -c modelpilot)"
# The example models, on a hostPath the pods mount read-only (models are not part of the image).
cp -r "$MODELS" "$RUN/models"; chmod -R a+rX "$RUN/models"
echo "# no DNS in this cluster (pods have no route to any resolver)" > resolv.conf
cat > kubelet.yaml <<KY
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $API_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
resolvConf: $RUN/resolv.conf
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}   # on 198.18.255.1 only; no pod may open it
authorization: {mode: AlwaysAllow}
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
KY
# Never a kubelet without the guard: check it once more right before.
"$H/net_guard.sh" check >> net_guard.log || { echo "GUARD CHECK FAILED: kubelet not started"; exit 1; }
env AWS_EC2_METADATA_DISABLED=true "$BIN/kubelet" --config=kubelet.yaml --kubeconfig=kubeconfig --container-runtime=remote \
  --container-runtime-endpoint="unix://$RUN/ctrd/containerd.sock" --root-dir="$RUN/kubelet" --cert-dir="$RUN/kubelet/pki" \
  --hostname-override=node1 --node-ip=$API_IP --pod-infra-container-image="$PAUSE_IMAGE" > kubelet.log 2>&1 3>&- & echo $! >> pids
# kube-proxy, iptables mode. conntrack/sysctl tuning disabled (0 = leave as is); NodePorts only on 198.18.255.1.
"$BIN/kube-proxy" --kubeconfig=kubeconfig --proxy-mode=iptables --cluster-cidr=$POD_CIDR --hostname-override=node1 \
  --bind-address=$API_IP --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249 \
  --nodeport-addresses=$API_IP/32 --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 \
  --conntrack-tcp-timeout-close-wait=0 > kube-proxy.log 2>&1 3>&- & echo $! >> pids
waitfor "node registration" $K get node node1
$K wait --for=condition=Ready node/node1 --timeout=90s >/dev/null
$K taint nodes node1 node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true  # no nodelifecycle controller
waitfor "default ServiceAccount" $K get sa default
waitfor kube-proxy curl -sf http://127.0.0.1:10256/healthz
say "node Ready, kube-proxy healthy"

# --- Prometheus: pods discovered from the API server (HTTP SD), scraped on their pod IPs every second --------------
echo -n "$TOKEN" > prom/token; chmod 600 prom/token
cat > prom/prometheus.yml <<Y
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: kubernetes-pods     # == kubernetes_sd_configs: [{role: pod}] with the prometheus.io/* annotations
    http_sd_configs: [{url: "http://127.0.0.1:$SD_PORT/pod", refresh_interval: 2s}]
    relabel_configs:
      - {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape], action: keep, regex: "true"}
      - {source_labels: [__meta_kubernetes_pod_phase], action: keep, regex: Running}
      - {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path], target_label: __metrics_path__, regex: (.+)}
      - source_labels: [__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]
        regex: (.+);(.+)
        target_label: __address__
        replacement: \$1:\$2
      - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
      - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
Y
promtool check config prom/prometheus.yml >/dev/null
python3 "$H/prom/k8s_http_sd.py" $SD_PORT "https://$API_IP:$API_PORT" prom/token > prom/http_sd.log 2>&1 3>&- & echo $! >> pids
prometheus --config.file=prom/prometheus.yml --storage.tsdb.path=prom/data --web.listen-address=$API_IP:$PROM_PORT \
  --storage.tsdb.retention.time=6h --log.level=warn > prom/prometheus.log 2>&1 3>&- & echo $! >> pids
waitfor prometheus curl -sf http://$API_IP:$PROM_PORT/-/ready
"$H/net_guard.sh" check >> net_guard.log || { echo "GUARD CHECK FAILED after start"; exit 1; }

cat > cluster.env <<ENV
KUBECONFIG=$RUN/kubeconfig
KUBECTL=$KUBECTL
HELM=$TOOLS/helm
PROMETHEUS_URL=http://$API_IP:$PROM_PORT
MODELS=$RUN/models
OPERATOR_IMAGE=$OPERATOR_IMAGE
SERVER_IMAGE=$SERVER_IMAGE
RUN=$RUN
BIN=$BIN
ENV
say "cluster up; pids: $(tr '\n' ' ' < pids)"
echo "$RUN/cluster.env" >&3
