# syntax=docker/dockerfile:1
# ModelPilot images: two targets from one file.
#
#   operator       the kopf operator            (entry point modelpilot-operator)
#   model-server   the model server pods run     (entry point modelpilot-server, Open Inference Protocol v2 on 8080)
#
# Wheels are installed with `pip install --no-index` from a wheelhouse built beforehand, so the build itself needs no
# network (it also runs with `docker build --network none`):
#
#   python3 -m pip wheel --wheel-dir build/wheels '.[server]'
#   docker build --target operator     -t modelpilot/operator:0.1.0 .
#   docker build --target model-server -t modelpilot/model-server:0.1.0 .
#
# The wheelhouse must match the base image's Python (CPython 3.11 on glibc for the default base). BASE_IMAGE may be any
# image with python3 (3.11) and its venv module: the public python:3.11-slim by default, or a Debian bookworm rootfs
# with python3 and python3-venv (e2e/cluster/images.sh builds one with debootstrap).
# The images run as uid 10001, keep nothing writable outside /tmp, and carry no compiler.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    PATH=/opt/modelpilot/bin:$PATH
RUN echo 'modelpilot:x:10001:10001:modelpilot:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'modelpilot:x:10001:' >> /etc/group

FROM runtime AS wheelhouse
ARG WHEELS=build/wheels
COPY ${WHEELS} /wheels

# One virtual environment per image, created at its final path (console scripts name their interpreter by path).
# pip, setuptools and wheel are removed from it once the wheels are in; bytecode is compiled here, because a
# read-only root filesystem cannot take it later.
FROM wheelhouse AS operator-venv
RUN python3 -m venv /opt/modelpilot \
 && /opt/modelpilot/bin/pip install --no-index --find-links /wheels --quiet modelpilot \
 && { /opt/modelpilot/bin/pip uninstall --quiet --yes pip setuptools wheel >/dev/null 2>&1 || true; } \
 && /opt/modelpilot/bin/python -c "import modelpilot, kopf" \
 && python3 -m compileall -q /opt/modelpilot/lib >/dev/null

FROM runtime AS operator
COPY --from=operator-venv /opt/modelpilot /opt/modelpilot
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["/opt/modelpilot/bin/modelpilot-operator"]

FROM wheelhouse AS model-server-venv
RUN python3 -m venv /opt/modelpilot \
 && /opt/modelpilot/bin/pip install --no-index --find-links /wheels --quiet 'modelpilot[server]' \
 && { /opt/modelpilot/bin/pip uninstall --quiet --yes pip setuptools wheel >/dev/null 2>&1 || true; } \
 && /opt/modelpilot/bin/python -c "import modelpilot_server, sklearn" \
 && python3 -m compileall -q /opt/modelpilot/lib >/dev/null

FROM runtime AS model-server
COPY --from=model-server-venv /opt/modelpilot /opt/modelpilot
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["/opt/modelpilot/bin/modelpilot-server"]
