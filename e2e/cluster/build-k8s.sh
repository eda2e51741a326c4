#!/usr/bin/env bash
# Build the Kubernetes server binaries (v1.20.2) from Debian bookworm's `kubernetes` source package, offline
# (vendored Go dependencies, Debian's Go toolchain), and cache them by version.
#
#   e2e/cluster/build-k8s.sh            -> prints the folder holding the binaries
#
# Cache: ${MODELPILOT_CACHE:-~/.cache/modelpilot}/k8s/<version>/bin. A second run with every binary present does nothing.
# The tree's build/pause/linux/pause.c (the node's sandbox image) is kept beside it, in ../pause/pause.c; when only
# that file is missing it is taken from the source tarball alone, without a rebuild.
# Needs root for apt-get. About 5-6 minutes and 2.6 GB of scratch disk on 2 cores.
set -euo pipefail
VERSION=1.20.2
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
CACHE=${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}
OUT=$CACHE/k8s/$VERSION/bin
PAUSE=$CACHE/k8s/$VERSION/pause/pause.c

have_all() { for b in "${BINARIES[@]}"; do [ -x "$OUT/$b" ] || return 1; done; }
if have_all && [ -s "$PAUSE" ]; then echo "$OUT"; exit 0; fi

exec 3>&1 1>&2   # progress to stderr, the answer to stdout
WORK=$(mktemp -d "${TMPDIR:-/tmp}/modelpilot-k8s-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/lists/partial" "$OUT"
cd "$WORK"

# A private apt configuration with a deb-src line, so the machine's own apt sources stay untouched.
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)}
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
echo "deb-src $MIRROR bookworm main" > src.list
A=(-o "Dir::Etc::SourceList=$WORK/src.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$WORK/lists")
apt-get "${A[@]}" update -qq
apt-get "${A[@]}" source --download-only kubernetes >/dev/null 2>&1

keep_pause() {   # $1: the unpacked tree
  mkdir -p "$(dirname "$PAUSE")"
  install -m 0644 "$1/build/pause/linux/pause.c" "$PAUSE.tmp" && mv "$PAUSE.tmp" "$PAUSE"
}
if have_all; then   # binaries cached, pause.c missing: extract that one file, no build
  tar xzf kubernetes_*.orig.tar.gz "kubernetes-$VERSION/build/pause/linux/pause.c"
  keep_pause "kubernetes-$VERSION"
  echo "$OUT" >&3
  exit 0
fi
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq golang-1.19-go rsync golang-github-modern-go-reflect2-dev >/dev/null
tar xzf kubernetes_*.orig.tar.gz
keep_pause "kubernetes-$VERSION"
cd "kubernetes-$VERSION"

# The vendored reflect2 1.0.1 crashes the API server under Go >= 1.18 on the first custom resource write:
# use Debian's 1.0.2 instead.
V=vendor/github.com/modern-go/reflect2
find "$V" -maxdepth 1 \( -name '*.go' -o -name '*.s' \) -delete
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$V/"

mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
export GOPATH=$PWD/.go PATH=/usr/lib/go-1.19/bin:$PATH CGO_ENABLED=0 HOME=$WORK/home GOPROXY=off
T0=$(date +%s)
make WHAT="$(printf 'cmd/%s ' "${BINARIES[@]}")" >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log"; exit 1; }
echo "built Kubernetes $VERSION in $(( $(date +%s) - T0 )) s"
for b in "${BINARIES[@]}"; do install -m 0755 "_output/bin/$b" "$OUT/$b.tmp" && mv "$OUT/$b.tmp" "$OUT/$b"; done
echo "$OUT" >&3
