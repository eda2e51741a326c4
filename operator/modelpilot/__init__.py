"""ModelPilot: a Kubernetes operator that runs ML models and releases new versions safely.

Layers (checked by import-linter, see ``pyproject.toml``)::

    handlers -> reconcile -> kube -> rollout -> api

``rollout`` holds the pure decisions (no I/O, no clock), ``kube`` is the only code that talks to the Kubernetes API,
``handlers`` is thin kopf wiring.
"""

__version__ = "0.1.0"
