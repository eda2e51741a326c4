"""``modelpilot-operator`` / ``python -m modelpilot``: run the operator.

It talks to the cluster of the current kubeconfig (``KUBECONFIG`` or ``--kubeconfig``), or the in-cluster service
account when it runs in a pod, and watches every namespace unless ``--namespace`` is given (repeatable).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Mapping

import kopf
import kubernetes
from prometheus_client import start_http_server

from modelpilot import __version__
from modelpilot.api.constants import GROUP
from modelpilot.handlers import Runtime, register
from modelpilot.kube.client import Kube
from modelpilot.reconcile import DEFAULT_SERVER_IMAGE, OperatorConfig
from modelpilot.telemetry import OperatorMetrics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="modelpilot-operator", description=__doc__.splitlines()[0])
    p.add_argument("--namespace", "-n", action="append", default=None,
                   help="watch only this namespace (repeatable); default: all namespaces")
    p.add_argument("--kubeconfig", default=env("KUBECONFIG"), help="kubeconfig file (default: in-cluster, ~/.kube)")
    p.add_argument("--server-image", default=env("MODELPILOT_SERVER_IMAGE", DEFAULT_SERVER_IMAGE),
                   help="model server image for ModelDeployments that name none (env MODELPILOT_SERVER_IMAGE)")
    p.add_argument("--metrics-port", type=int, default=int(env("MODELPILOT_METRICS_PORT", "8081")),
                   help="port of the operator's /metrics; 0 turns it off")
    p.add_argument("--health-address", default=env("MODELPILOT_HEALTH_ADDRESS", "0.0.0.0:8080"),
                   help="host:port of the liveness endpoint /healthz; empty turns it off")
    p.add_argument("--resync-seconds", type=float, default=float(env("MODELPILOT_RESYNC_SECONDS", "30")),
                   help="how often every ModelDeployment is reconciled even when nothing changed")
    p.add_argument("--prometheus-url", default=env("MODELPILOT_PROMETHEUS_URL"),
                   help="Prometheus that analysis queries (env MODELPILOT_PROMETHEUS_URL); without it every check is "
                   "an Error verdict")
    p.add_argument("--log-level", default=env("MODELPILOT_LOG_LEVEL", "INFO"), choices=["DEBUG", "INFO", "WARNING"])
    p.add_argument("--version", action="version", version=__version__)
    return p.parse_args(argv)


def api_client(kubeconfig: str | None) -> kubernetes.client.ApiClient:
    if kubeconfig:
        return kubernetes.config.new_client_from_config(config_file=kubeconfig)
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


def in_cluster_server(info: kopf.ConnectionInfo, environ: Mapping[str, str]) -> kopf.ConnectionInfo:
    """Address the API server as the kubelet told the pod (KUBERNETES_SERVICE_HOST/PORT), as client-go does.

    kopf's service-account login names https://kubernetes.default.svc, which needs cluster DNS; clusters without it
    (or pods with their own resolv.conf) still reach the API server this way.

    >>> info = kopf.ConnectionInfo(server="https://kubernetes.default.svc", token="t")
    >>> in_cluster_server(info, {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}).server
    'https://10.0.0.1:443'
    >>> in_cluster_server(info, {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}).server
    'https://[fd00::1]:443'
    >>> in_cluster_server(info, {}).server
    'https://kubernetes.default.svc'
    """
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return info
    host = f"[{host}]" if ":" in host else host
    return dataclasses.replace(info, server=f"https://{host}:{port}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf's own login reads it
    metrics = OperatorMetrics()
    if args.metrics_port:
        start_http_server(args.metrics_port, registry=metrics.registry)
    runtime = Runtime(
        kube=Kube(api_client(args.kubeconfig)),
        config=OperatorConfig(args.server_image),
        metrics=metrics,
        prometheus_url=args.prometheus_url,
        resync_seconds=args.resync_seconds,
    )
    registry = kopf.OperatorRegistry()
    register(registry)

    @kopf.on.login(registry=registry)
    def login(**kwargs: object) -> kopf.ConnectionInfo | None:
        # kopf's own readers of KUBECONFIG and of the in-cluster service account: no dependency on how a given
        # release of the kubernetes client stores its credentials.
        if args.kubeconfig:
            return kopf.login_with_kubeconfig(**kwargs)
        info = kopf.login_with_service_account(**kwargs)
        return in_cluster_server(info, os.environ) if info else kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: object) -> None:
        # Our own names for everything kopf keeps on objects, so two operators on a cluster never collide.
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        # Replace watch streams that go quiet without failing.
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 10
        settings.execution.max_workers = 8
        settings.posting.level = logging.INFO

    health = f"http://{args.health_address}/healthz" if args.health_address else None
    asyncio.run(
        kopf.operator(
            registry=registry,
            memo=kopf.Memo(runtime=runtime),
            standalone=True,  # one replica (Recreate): peering is not leader election
            clusterwide=not args.namespace,
            namespaces=args.namespace or [],
            liveness_endpoint=health,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
