"""Open Inference Protocol v2 conformance of the app, endpoint by endpoint and error by error.

Covered: server metadata, liveness, readiness (loading, ready, failed load, draining); model metadata and readiness
(plain and versioned); infer with FP32/FP64/INT64 (flat and nested data), BYTES, the binary tensor extension, output
selection, id echo and generation, parameters; ONNX and scikit-learn giving the same labels; errors: unknown model or
version 404, malformed JSON 400, wrong shape / datatype / unknown tensor 400 naming the input, model-rejected values
400, oversized body 413, unknown path 404, wrong method 405, not ready 503 — each with an ``{"error": ...}`` body.
"""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest
from modelpilot_server.loaders import load_model
from modelpilot_server.state import STATE

from .conftest import infer_body, output

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


async def test_server_metadata_and_liveness(client):
    response = await client.get("/v2")
    assert response.status == 200
    assert (await response.json())["name"] == "modelpilot-server"
    response = await client.get("/v2/health/live")
    assert response.status == 200 and (await response.json()) == {"live": True}


async def test_readiness_follows_loading(make_client, base_config):
    release = asyncio.Event()

    async def slow_load(config):
        await release.wait()
        return await load_model(config)

    client = await make_client(wait=False, load=slow_load)
    assert (await client.get("/v2/health/live")).status == 200
    response = await client.get("/v2/health/ready")
    assert response.status == 503
    assert "loading" in (await response.json())["reason"]
    response = await client.get("/v2/models/iris/ready")
    assert response.status == 503 and (await response.json())["ready"] is False
    response = await client.post("/v2/models/iris/infer", json=infer_body([SETOSA]))
    assert response.status == 503
    assert "not ready" in (await response.json())["error"]

    release.set()
    await client.app[STATE].loading
    assert (await client.get("/v2/health/ready")).status == 200
    response = await client.get("/v2/models/iris/ready")
    assert response.status == 200 and (await response.json()) == {"name": "iris", "ready": True}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"model_sha256": "0" * 64}, "sha256 mismatch"),
        ({"model_uri": "file:///nonexistent/model.joblib"}, "cannot read model file"),
        ({"model_format": "onnx"}, "cannot load onnx model"),
    ],
)
async def test_failed_load_is_reported_and_not_ready(make_client, overrides, reason):
    client = await make_client(wait=False, **overrides)
    await client.app[STATE].loading
    for path in ("/v2/health/ready", "/v2/models/iris/ready"):
        response = await client.get(path)
        assert response.status == 503
        assert reason in (await response.json())["reason"]
    assert (await client.get("/v2/health/live")).status == 200
    response = await client.get("/v2/models/iris")
    assert response.status == 503 and reason in (await response.json())["error"]


async def test_model_metadata(client):
    for path in ("/v2/models/iris", "/v2/models/iris/versions/1"):
        response = await client.get(path)
        assert response.status == 200
        assert await response.json() == {
            "name": "iris",
            "versions": ["1"],
            "platform": "sklearn",
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
            "outputs": [
                {"name": "predict", "datatype": "INT64", "shape": [-1]},
                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
            ],
        }


async def test_infer_predicts_real_labels(client, iris_eval):
    x, y = iris_eval
    response = await client.post("/v2/models/iris/infer", json=infer_body(x))
    assert response.status == 200
    assert response.content_type == "application/json"
    document = await response.json()
    assert document["model_name"] == "iris" and document["model_version"] == "1"
    assert document["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [len(x)], "data": output(document)},
    ]
    accuracy = np.mean(np.asarray(output(document)) == y)
    assert accuracy > 0.9


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT64"])
async def test_infer_numeric_datatypes(client, datatype):
    rows = [[5, 3, 1, 0], [7, 3, 5, 2]]
    response = await client.post("/v2/models/iris/infer", json=infer_body(rows, datatype=datatype))
    assert response.status == 200
    assert output(await response.json()) == [0, 2]


async def test_infer_accepts_nested_data_and_any_single_input_name(client):
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4], "data": [SETOSA, VIRGINICA]}]}
    response = await client.post("/v2/models/iris/infer", json=body)
    assert output(await response.json()) == [0, 2]


async def test_infer_versioned_route(client):
    response = await client.post("/v2/models/iris/versions/1/infer", json=infer_body([SETOSA]))
    assert response.status == 200


async def test_infer_outputs_selection_and_probabilities(client):
    body = infer_body([SETOSA, VIRGINICA], outputs=[{"name": "predict_proba"}])
    document = await (await client.post("/v2/models/iris/infer", json=body)).json()
    assert [tensor["name"] for tensor in document["outputs"]] == ["predict_proba"]
    probabilities = np.asarray(output(document, "predict_proba")).reshape(document["outputs"][0]["shape"])
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert list(probabilities.argmax(axis=1)) == [0, 2]


async def test_infer_id_is_echoed_or_generated(client):
    echoed = await (await client.post("/v2/models/iris/infer", json=infer_body([SETOSA], id="req-42"))).json()
    assert echoed["id"] == "req-42"
    ids = set()
    for _ in range(5):
        document = await (await client.post("/v2/models/iris/infer", json=infer_body([SETOSA]))).json()
        ids.add(document["id"])
    assert len(ids) == 5 and all(ids)


async def test_infer_accepts_parameters(client):
    body = infer_body([SETOSA], parameters={"content_type": "np", "priority": 1})
    assert (await client.post("/v2/models/iris/infer", json=body)).status == 200


async def test_binary_tensor_extension(client):
    x = np.asarray([SETOSA, VIRGINICA], dtype=np.float32)
    header = {
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [2, 4],
                    "parameters": {"binary_data_size": x.nbytes}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    }
    import orjson

    head = orjson.dumps(header)
    response = await client.post(
        "/v2/models/iris/infer", data=head + x.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"},
    )
    assert response.status == 200, await response.text()
    assert output(await response.json()) == [0, 2]


async def test_bytes_input(make_client, models_dir):
    client = await make_client(model_name="text", model_uri=(models_dir / "text.joblib").as_uri())
    metadata = await (await client.get("/v2/models/text")).json()
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["outputs"][0] == {"name": "predict", "datatype": "BYTES", "shape": [-1]}
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["really great", "awful"]}]}
    document = await (await client.post("/v2/models/text/infer", json=body)).json()
    assert output(document) == ["pos", "neg"]

    encoded = b"".join(struct.pack("<I", len(s)) + s for s in (b"love it", b"hate it"))
    import orjson

    head = orjson.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                     "parameters": {"binary_data_size": len(encoded)}}]})
    response = await client.post("/v2/models/text/infer", data=head + encoded,
                                 headers={"Inference-Header-Content-Length": str(len(head))})
    assert output(await response.json()) == ["pos", "neg"]


async def test_onnx_model_matches_sklearn(make_client, models_dir, iris_eval):
    x, _ = iris_eval
    sklearn_client = await make_client()
    onnx_client = await make_client(model_uri=(models_dir / "iris-good.onnx").as_uri(), model_format="onnx")
    metadata = await (await onnx_client.get("/v2/models/iris")).json()
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"][0]["datatype"] == "FP32" and metadata["inputs"][0]["shape"] == [-1, 4]
    label_name = metadata["outputs"][0]["name"]
    onnx_doc = await (await onnx_client.post("/v2/models/iris/infer", json=infer_body(x, datatype="FP32"))).json()
    sk_doc = await (await sklearn_client.post("/v2/models/iris/infer", json=infer_body(x))).json()
    assert output(onnx_doc, label_name) == output(sk_doc)


async def test_model_over_http(make_client, models_dir, file_server, manifest):
    base = await file_server(models_dir)
    client = await make_client(model_uri=f"{base}/iris-good.joblib",
                               model_sha256=manifest["iris-good.joblib"]["sha256"])
    document = await (await client.post("/v2/models/iris/infer", json=infer_body([VIRGINICA]))).json()
    assert output(document) == [2]


# -- errors ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/other"),
        ("GET", "/v2/models/other/ready"),
        ("POST", "/v2/models/other/infer"),
        ("POST", "/v2/models/other/feedback"),
        ("GET", "/v2/models/iris/versions/9"),
        ("POST", "/v2/models/iris/versions/9/infer"),
    ],
)
async def test_unknown_model_or_version_is_404(client, method, path):
    response = await client.request(method, path, json=infer_body([SETOSA]))
    assert response.status == 404
    assert "unknown" in (await response.json())["error"]


def _input(**fields):
    return {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 4], "data": SETOSA, **fields}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{}", "'inputs' must be a non-empty list"),
        (_input(shape=[1, 3]), "input 'input-0': shape [1, 3] does not match model shape [-1, 4]"),
        (_input(shape=[4]), "input 'input-0': shape [4] does not match"),
        (_input(shape=[2, 4]), "input 'input-0': 4 values do not fill shape [2, 4]"),
        (_input(datatype="BYTES", data=["a", "b", "c", "d"]), "input 'input-0': datatype BYTES is not accepted"),
        (_input(datatype="FP128"), "input 'input-0': unknown datatype 'FP128'"),
        (_input(data=["a", "b", "c", "d"]), "input 'input-0': data is not valid FP64"),
        (_input(data=[[1, 2], [3]]), "input 'input-0': data is not valid FP64"),
        (_input(shape="1x4"), "input 'input-0': shape must be a list"),
        ({**_input(), "outputs": [{"name": "nope"}]}, "unknown output 'nope'"),
        ({**_input(), "id": 7}, "'id' must be a string"),
        ({**_input(), "parameters": [1]}, "'parameters' must be an object"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_bad_requests_are_400_naming_the_problem(client, body, message):
    import orjson

    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await client.post("/v2/models/iris/infer", data=data)
    assert response.status == 400
    assert message in (await response.json())["error"]


async def test_value_the_model_rejects_is_400(client):
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "parameters": {"binary_data_size": 32}}]}
    import orjson

    head = orjson.dumps(body)
    nan_row = np.asarray([np.nan, 1, 1, 1], dtype=np.float64).tobytes()
    response = await client.post("/v2/models/iris/infer", data=head + nan_row,
                                 headers={"Inference-Header-Content-Length": str(len(head))})
    assert response.status == 400
    assert "NaN" in (await response.json())["error"]


async def test_oversized_body_is_413(make_client):
    client = await make_client(max_body_bytes=1024)
    rows = np.ones((200, 4)).tolist()
    response = await client.post("/v2/models/iris/infer", json=infer_body(rows))
    assert response.status == 413
    assert "Maximum request body size 1024" in (await response.json())["error"]


async def test_unknown_path_and_wrong_method_have_error_bodies(client):
    response = await client.get("/v3/nothing")
    assert response.status == 404 and "/v3/nothing" in (await response.json())["error"]
    response = await client.get("/v2/models/iris/infer")
    assert response.status == 405 and "error" in await response.json()
