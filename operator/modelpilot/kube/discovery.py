"""API version selection by discovery: the operator targets current Kubernetes and still runs on older clusters."""

from __future__ import annotations

AUTOSCALING_PREFERENCE = ("v2", "v2beta2")


def pick_autoscaling_version(served: list[str]) -> str:
    """The best HorizontalPodAutoscaler API the cluster serves.

    >>> pick_autoscaling_version(["v1", "v2", "v2beta2"])
    'autoscaling/v2'
    >>> pick_autoscaling_version(["v1", "v2beta1", "v2beta2"])
    'autoscaling/v2beta2'
    """
    for version in AUTOSCALING_PREFERENCE:
        if version in served:
            return f"autoscaling/{version}"
    raise RuntimeError(f"the cluster serves no HorizontalPodAutoscaler API with resource targets: autoscaling {served}")
