"""The generated CRD: up to date, structural, with the subresources and columns kubectl relies on."""

from typing import Any

from modelpilot.api import crdgen


def walk(node: dict[str, Any], path="$"):
    """Every schema node (the object itself, its properties, items and additionalProperties)."""
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from walk(node[key], f"{path}.{key}")


def test_files_match_the_models():
    assert crdgen.main(["--check"]) == 0, "run: python -m modelpilot.api.crdgen --write"


def test_schema_is_structural():
    schema = crdgen.openapi_schema()
    for path, node in walk(schema):
        assert "$ref" not in node and "title" not in node and "anyOf" not in node, path
        assert node.get("additionalProperties") is not False, path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "default" not in node or node["default"] is not None, path
        for exclusive in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(exclusive, True), bool), path  # OpenAPI 3.0: a flag beside minimum/maximum
        if "properties" in node or "items" in node:
            assert node.get("type") in ("object", "array"), path
        if "type" not in node:
            assert node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields"), path


def test_every_spec_field_is_described():
    spec = crdgen.openapi_schema()["properties"]["spec"]
    for path, node in walk(spec):
        if path.endswith(".additionalProperties") or path.endswith(".items") and node.get("type") != "object":
            continue  # the map or list itself carries the description
        assert node.get("description"), path


def test_subresources_columns_and_names():
    version = crdgen.crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "status" in version["subresources"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert {"Model", "Version", "Phase", "Ready", "Age"} <= set(columns)
    assert crdgen.crd()["spec"]["names"]["shortNames"] == ["mdep", "md"]


def test_validation_reaches_the_schema():
    spec = crdgen.openapi_schema()["properties"]["spec"]
    assert spec["properties"]["replicas"]["minimum"] == 0
    assert spec["properties"]["model"]["properties"]["format"]["enum"] == ["sklearn", "onnx"]
    assert spec["properties"]["model"]["required"] == ["name", "version", "uri", "format"]
    assert spec["properties"]["model"]["properties"]["uri"]["pattern"].startswith("^(file|https?)://")
