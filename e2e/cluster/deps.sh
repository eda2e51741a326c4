#!/usr/bin/env bash
# Install the Debian packages the local cluster, the image build and the e2e suite need (root; idempotent: a machine
# that has them all installs nothing). The Kubernetes binaries come from build-k8s.sh, helm/kubectl from tools.sh.
set -euo pipefail
PKGS=(etcd-server containerd runc containernetworking-plugins iptables nftables conntrack ipset docker.io debootstrap
      prometheus openssl bc redis-server)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
command -v npm >/dev/null || missing+=(npm)   # a machine with its own Node.js keeps its npm
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
