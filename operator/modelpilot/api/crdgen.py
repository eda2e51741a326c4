"""Generate the ModelDeployment CRD from the pydantic models.

    python -m modelpilot.api.crdgen --write   # writes crds/ and the chart's copy
    python -m modelpilot.api.crdgen --check   # exits 1 when either file differs from the models

The pydantic JSON Schema is turned into a *structural* OpenAPI v3 schema as the API server demands: ``$ref``s are
inlined, ``Optional[X]`` becomes ``X`` with ``nullable: true``, titles go, and ``additionalProperties: false``
(pydantic's ``extra="forbid"``) is dropped because a structural schema may not combine it with ``properties``; the API
server prunes unknown fields instead, and the operator's own validation rejects them.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from modelpilot.api.constants import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from modelpilot.api.spec import ModelDeploymentSpec
from modelpilot.api.status import ModelDeploymentStatus

REPO = Path(__file__).resolve().parents[3]
TARGETS = (REPO / "crds" / "modeldeployments.yaml", REPO / "charts" / "modelpilot" / "crds" / "modeldeployments.yaml")

# Names end up in Service names (DNS-1035 label, 63 characters) and in `<name>-<revision>` Deployment names.
NAME_MAX_LENGTH = 52
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

_DROP = {"title", "additionalProperties", "$defs"}


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """Return the structural OpenAPI form of a pydantic JSON Schema (see the module docstring)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged)
        if "anyOf" in node:
            options = [o for o in node["anyOf"] if o != {"type": "null"}]
            if len(options) == 1 and len(options) < len(node["anyOf"]):
                rest = {k: v for k, v in node.items() if k != "anyOf"}
                out = walk({**options[0], **rest})
                out["nullable"] = True
                return out
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROP and not (key == "additionalProperties" and isinstance(value, dict)):
                continue
            if key == "default" and value in (None, "", [], {}):
                # "No value" is expressed by leaving the field out; Kubernetes 1.20 also reads back an empty
                # default as null and then rejects the CRD.
                continue
            if key == "properties":
                out[key] = {name: walk(sub) for name, sub in value.items()}
            else:
                out[key] = walk(value)
        for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if isinstance(out.get(exclusive), (int, float)) and not isinstance(out[exclusive], bool):
                out[bound], out[exclusive] = out[exclusive], True  # JSON Schema 2020 -> OpenAPI 3.0 form
        if "properties" in out:
            out.setdefault("type", "object")
        return out

    return walk(schema)


def strip_defaults(node: Any) -> Any:
    """Status is written by the operator alone: schema defaults there would only hide a missing write."""
    if isinstance(node, dict):
        return {k: strip_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [strip_defaults(v) for v in node]
    return node


def openapi_schema() -> dict[str, Any]:
    spec = structural(ModelDeploymentSpec.model_json_schema(by_alias=True))
    status = strip_defaults(structural(ModelDeploymentStatus.model_json_schema(by_alias=True)))
    return {
        "type": "object",
        "description": "A model served by ModelPilot: model server pods, a Service, autoscaling and safe releases.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": NAME_MAX_LENGTH, "pattern": NAME_PATTERN},
                },
            },
            "spec": spec,
            "status": status,
        },
    }


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "modelpilot"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["all", "modelpilot"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
                        {"name": "Version", "type": "string", "jsonPath": ".spec.model.version"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                        {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Revision", "type": "string", "jsonPath": ".status.stableRevision", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by `python -m modelpilot.api.crdgen --write` from the pydantic models. Do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelpilot.api.crdgen", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the CRD files")
    mode.add_argument("--check", action="store_true", help="exit 1 if a CRD file differs from the models")
    args = parser.parse_args(argv)
    text = render()
    stale = [t for t in TARGETS if not t.exists() or t.read_text() != text]
    if args.write:
        for target in TARGETS:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return 0
    for target in stale:
        print(f"{target.relative_to(REPO)} is stale: run python -m modelpilot.api.crdgen --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
