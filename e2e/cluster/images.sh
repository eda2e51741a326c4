#!/usr/bin/env bash
# Build the operator and model-server images offline and save them as tarballs for `ctr images import`, plus the
# sandbox (pause) image of the local node and the example models the e2e scenarios serve.
#
#   e2e/cluster/images.sh         -> prints KEY=VALUE lines (stdout); progress goes to stderr
#
#   BASE_IMAGE / BASE_TAR         Debian bookworm minbase + python3 (3.11) + python3-venv, from debootstrap (no registry)
#   OPERATOR_IMAGE / OPERATOR_TAR docker.io/modelpilot/operator:<version>       (Dockerfile target operator)
#   SERVER_IMAGE / SERVER_TAR     docker.io/modelpilot/model-server:<version>   (Dockerfile target model-server)
#   PAUSE_IMAGE / PAUSE_TAR       docker.io/modelpilot/pause:3.2  (static build of the k8s tree's pause.c)
#   MODELS                        folder of models trained by model-server/examples/train.py INSIDE the server image
#                                 (the same scikit-learn that serves them); mounted into pods, never baked in
#
# How: the wheelhouse is built on the host with pip (pip inside `docker build` has no network here), with the host's
# CPython 3.11, which matches Debian bookworm's python3; a private dockerd runs in an empty network namespace
# (`unshare --net`, no bridge, no iptables) with its own data root and socket, builds with `--network none`, and is
# stopped by its PID. Everything is cached under ${MODELPILOT_CACHE:-~/.cache/modelpilot}/images, keyed by a hash of
# the inputs: a second run with nothing changed only prints the answer.
# Needs root, debootstrap, docker.io (dockerd + docker client), gcc. env: MIRROR (Debian mirror; default: the machine's).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}
D=$CACHE/images
PYTHON=${PYTHON:-python3}
SLOW_TREES=${MODELPILOT_SLOW_TREES:-2000}
mkdir -p "$D"
exec 3>&1 1>&2   # progress to stderr, the answer to stdout
T0=$(date +%s)
say() { echo "images: [$(( $(date +%s) - T0 ))s] $*"; }

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -1)
OPERATOR_IMAGE=docker.io/modelpilot/operator:$VERSION
SERVER_IMAGE=docker.io/modelpilot/model-server:$VERSION
PAUSE_IMAGE=docker.io/modelpilot/pause:3.2
BASE_IMAGE=modelpilot/debian-python:bookworm

hash_files() { (cd "$REPO" && for f in "$@"; do find "$f" -type f ! -path '*/__pycache__/*' ! -name '*.pyc'; done \
  | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16; }

# --- 1. inputs and their hash --------------------------------------------------------------------------------------
PAUSE_C=$(dirname "$("$REPO/e2e/cluster/build-k8s.sh")")/pause/pause.c
[ -s "$PAUSE_C" ] || { echo "images.sh: $PAUSE_C missing (e2e/cluster/build-k8s.sh keeps it)"; exit 1; }
SRC_HASH=$(hash_files pyproject.toml README.md operator/modelpilot model-server/modelpilot_server)
DEPS_HASH=$(hash_files pyproject.toml)
IMG_HASH=$( { echo "$SRC_HASH"; sha256sum "$REPO/Dockerfile" "$PAUSE_C"; } | sha256sum | cut -c1-16)
MODELS_HASH=$( { echo "$IMG_HASH $SLOW_TREES"; sha256sum "$REPO/model-server/examples/train.py"; } | sha256sum | cut -c1-16)
OUT=$D/out/$IMG_HASH
MODELS=$CACHE/models/$MODELS_HASH

answer() {
  {
    echo "BASE_IMAGE=$BASE_IMAGE"; echo "BASE_TAR=$D/base.tar"
    echo "OPERATOR_IMAGE=$OPERATOR_IMAGE"; echo "OPERATOR_TAR=$OUT/operator.tar"
    echo "SERVER_IMAGE=$SERVER_IMAGE"; echo "SERVER_TAR=$OUT/model-server.tar"
    echo "PAUSE_IMAGE=$PAUSE_IMAGE"; echo "PAUSE_TAR=$OUT/pause.tar"
    echo "MODELS=$MODELS"
  } >&3
}
if [ -s "$OUT/operator.tar" ] && [ -s "$OUT/model-server.tar" ] && [ -s "$OUT/pause.tar" ] && [ -s "$MODELS/manifest.json" ]; then
  say "cached ($IMG_HASH, models $MODELS_HASH)"; answer; exit 0
fi

# --- 2. base rootfs (debootstrap) ----------------------------------------------------------------------------------
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)}
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
ROOTFS=$D/rootfs
if [ ! -e "$ROOTFS/.complete" ]; then
  say "debootstrap bookworm minbase + python3 python3-venv from $MIRROR"
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$ROOTFS" "$MIRROR" > "$D/debootstrap.log" 2>&1 \
    || { tail -20 "$D/debootstrap.log"; exit 1; }
  touch "$ROOTFS/.complete"; rm -f "$D/base.tar"
fi
IMAGE_PY_FULL=$(chroot "$ROOTFS" /usr/bin/python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
IMAGE_PY=${IMAGE_PY_FULL%.*}
HOST_PY=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$IMAGE_PY" = "$HOST_PY" ] || { echo "images.sh: host $PYTHON is $HOST_PY, the image's python3 is $IMAGE_PY: wheels would not match"; exit 1; }
if [ ! -s "$D/base.tar" ]; then
  tar -C "$ROOTFS" --exclude=./.complete --exclude=./var/cache/apt/archives --exclude=./var/lib/apt/lists \
      --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/locale -cf "$D/base.tar.tmp" .
  mv "$D/base.tar.tmp" "$D/base.tar"
fi

# --- 3. wheelhouse on the host -------------------------------------------------------------------------------------
CTX=$D/context
WH=$CTX/build/wheels
mkdir -p "$WH"
SRC=$(mktemp -d "${TMPDIR:-/tmp}/modelpilot-src.XXXXXX")
DPID=
cleanup() {
  rm -rf "$SRC"
  if [ -n "$DPID" ]; then kill "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi
}
trap cleanup EXIT
(cd "$REPO" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md operator/modelpilot \
  model-server/modelpilot_server) | tar -C "$SRC" -xf -
if [ ! -e "$WH/.deps-$DEPS_HASH" ]; then
  say "wheelhouse: dependencies (pip wheel, CPython $HOST_PY)"
  rm -f "$WH"/*.whl "$WH"/.deps-*
  "$PYTHON" -m pip wheel --quiet --wheel-dir "$WH" "$SRC[server]"
  # pip evaluates markers for the interpreter it runs in: the host's CPython $HOST_PY is not exactly the image's
  # $IMAGE_PY_FULL (e.g. redis needs async-timeout below 3.11.3). Add the binary wheels that the IMAGE's python needs.
  chroot "$ROOTFS" /usr/bin/python3 - --print-environment < "$REPO/e2e/cluster/wheel_closure.py" > "$SRC/image-env.json"
  GLIBC_MINOR=$(chroot "$ROOTFS" ldd --version | awk 'NR==1 {print $NF}' | cut -d. -f2); ARCH=$(uname -m)
  PLATFORMS=(--platform any --platform "linux_$ARCH" --platform "manylinux2014_$ARCH" --platform "manylinux2010_$ARCH"
             --platform "manylinux1_$ARCH")
  for m in $(seq 5 "$GLIBC_MINOR"); do PLATFORMS+=(--platform "manylinux_2_${m}_$ARCH"); done
  for _ in 1 2 3 4 5; do
    mapfile -t MISSING < <("$PYTHON" "$REPO/e2e/cluster/wheel_closure.py" "$WH" "$SRC/image-env.json" 'modelpilot[server]')
    [ "${#MISSING[@]}" = 0 ] && break
    say "wheelhouse: for the image's python $IMAGE_PY_FULL: ${MISSING[*]}"
    "$PYTHON" -m pip download --quiet --no-deps --dest "$WH" --only-binary=:all: --python-version "$IMAGE_PY_FULL" \
      --implementation cp --abi "cp${IMAGE_PY/./}" --abi abi3 --abi none "${PLATFORMS[@]}" "${MISSING[@]}"
  done
  [ "${#MISSING[@]}" = 0 ] || { echo "images.sh: wheelhouse incomplete for the image: ${MISSING[*]}"; exit 1; }
  touch "$WH/.deps-$DEPS_HASH"
fi
if [ ! -e "$WH/.src-$SRC_HASH" ]; then
  say "wheelhouse: modelpilot $VERSION"
  rm -f "$WH"/modelpilot-*.whl "$WH"/.src-*
  "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WH" "$SRC"
  touch "$WH/.src-$SRC_HASH"
fi
cp "$REPO/Dockerfile" "$CTX/Dockerfile"
printf '*\n!build/wheels/\n' > "$CTX/.dockerignore"

# --- 4. private dockerd with no network ----------------------------------------------------------------------------
mkdir -p "$D/docker" /run/modelpilot-docker
unshare --net -- dockerd --data-root "$D/docker/data" --exec-root /run/modelpilot-docker \
  --pidfile /run/modelpilot-docker/dockerd.pid -H "unix://$D/docker/docker.sock" --bridge=none --iptables=false \
  --ip6tables=false --ip-forward=false --ip-masq=false > "$D/docker/dockerd.log" 2>&1 &
DPID=$!
export DOCKER_HOST="unix://$D/docker/docker.sock" DOCKER_BUILDKIT=0
for _ in $(seq 1 100); do docker version >/dev/null 2>&1 && break; kill -0 "$DPID" 2>/dev/null || break; sleep 0.3; done
docker version >/dev/null 2>&1 || { tail -20 "$D/docker/dockerd.log"; echo "images.sh: dockerd did not start"; exit 1; }
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  say "docker import $BASE_IMAGE"
  docker import -c 'CMD ["/usr/bin/python3"]' "$D/base.tar" "$BASE_IMAGE" >/dev/null
fi

# --- 5. images -----------------------------------------------------------------------------------------------------
mkdir -p "$OUT.tmp/pause"
gcc -Os -static -DVERSION=3.2 -o "$OUT.tmp/pause/pause" "$PAUSE_C"
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$OUT.tmp/pause/Dockerfile"
docker build --network none -q -t "$PAUSE_IMAGE" "$OUT.tmp/pause" >/dev/null
for target in operator model-server; do
  image=$([ $target = operator ] && echo "$OPERATOR_IMAGE" || echo "$SERVER_IMAGE")
  say "docker build --target $target ($image)"
  docker build --network none --build-arg "BASE_IMAGE=$BASE_IMAGE" --target "$target" -t "$image" \
    --label "io.modelpilot.inputs=$IMG_HASH" "$CTX" > "$D/build-$target.log" 2>&1 || { tail -30 "$D/build-$target.log"; exit 1; }
done
docker save -o "$OUT.tmp/operator.tar" "$OPERATOR_IMAGE"
docker save -o "$OUT.tmp/model-server.tar" "$SERVER_IMAGE"
docker save -o "$OUT.tmp/pause.tar" "$PAUSE_IMAGE"
rm -rf "$OUT.tmp/pause" "$OUT"; mv "$OUT.tmp" "$OUT"
find "$D/out" -mindepth 1 -maxdepth 1 ! -name "$IMG_HASH" -exec rm -rf {} +   # older builds
docker image prune -f >/dev/null   # their layers (the base and the newest images stay tagged)
say "saved: $(du -sh "$OUT"/*.tar | awk '{printf "%s %s  ", $2, $1}')"

# --- 6. example models, trained by the server image itself ---------------------------------------------------------
if [ ! -s "$MODELS/manifest.json" ]; then
  say "training example models (iris; slow forest: $SLOW_TREES trees)"
  rm -rf "$MODELS.tmp"; mkdir -p "$MODELS.tmp"
  docker run --rm --network none --user 0 -v "$MODELS.tmp:/out" \
    -v "$REPO/model-server/examples/train.py:/train.py:ro" --entrypoint /opt/modelpilot/bin/python "$SERVER_IMAGE" \
    /train.py /out --datasets iris --no-onnx --slow-trees "$SLOW_TREES" >&2
  chmod -R a+rX "$MODELS.tmp"; rm -rf "$MODELS"; mv "$MODELS.tmp" "$MODELS"
  find "$CACHE/models" -mindepth 1 -maxdepth 1 ! -name "$MODELS_HASH" -exec rm -rf {} +   # up.sh copies, never links
fi
say "done"
answer
