"""Helm post-renderer for clusters without DNS in pods (the local e2e cluster): resolve the API server's name.

kopf's in-cluster login connects to ``https://kubernetes.default.svc``; without a cluster DNS that name does not
resolve. This adds ``hostAliases`` for it (the ClusterIP of Service ``default/kubernetes``, given as the first argument)
to every Deployment of the rendered chart, and leaves everything else as rendered.

    helm install ... --post-renderer WRAPPER     (WRAPPER: exec python post_render_hostaliases.py 198.19.0.1)
"""

from __future__ import annotations

import sys

import yaml

NAMES = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]


def main() -> int:
    ip = sys.argv[1]
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    for doc in docs:
        if doc.get("kind") == "Deployment":
            pod = doc["spec"]["template"]["spec"]
            pod["hostAliases"] = [*(pod.get("hostAliases") or []), {"ip": ip, "hostnames": NAMES}]
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
