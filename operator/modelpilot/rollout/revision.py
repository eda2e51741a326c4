"""Revision identity: a short, stable hash of everything that defines the pods.

Two specs that render the same pod template have the same revision, whatever the order of keys; any change to the
rendered template (model version, URI, image, resources, env, a template override) gives a new revision and so a new
Deployment ``<name>-<revision>``.

>>> revision_of({"b": 1, "a": [1, 2]}) == revision_of({"a": [1, 2], "b": 1})
True
>>> len(revision_of({}))
10
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

REVISION_LENGTH = 10
# The hash is hex, so it is all digits now and then; a leading letter keeps it a valid DNS label start and a
# string in every YAML reader ("1234567890" would otherwise come back as an integer).
_PREFIX = "r"


def revision_of(pod_template: dict[str, Any]) -> str:
    canonical = json.dumps(pod_template, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[: REVISION_LENGTH - len(_PREFIX)]
