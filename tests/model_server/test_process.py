"""The server as a real process (``python -m modelpilot_server`` on 127.0.0.1, configured by environment), spoken to by
``tritonclient[http]``, a v2 client written for other servers: health, metadata, binary and JSON tensors, output
selection, and feedback on the returned ids.
"""

from __future__ import annotations

import json
import urllib.request

import joblib
import numpy as np
import pytest
import tritonclient.http as triton

from .conftest import ServerProcess


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    process = ServerProcess(
        {"MODEL_NAME": "iris", "MODEL_URI": (models_dir / "iris-good.joblib").as_uri(), "MODELPILOT_REVISION": "rev-p",
         "MODELPILOT_MAX_BATCH_SIZE": "16"},
        tmp_path_factory.mktemp("process") / "server.log",
    )
    process.wait_ready()
    yield process
    process.stop()


@pytest.fixture
def triton_client(server):
    client = triton.InferenceServerClient(server.url.removeprefix("http://"), connection_timeout=10,
                                          network_timeout=10)
    yield client
    client.close()


def test_health_and_metadata(triton_client):
    assert triton_client.is_server_live()
    assert triton_client.is_server_ready()
    assert triton_client.is_model_ready("iris")
    assert not triton_client.is_model_ready("other")
    metadata = triton_client.get_model_metadata("iris")
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in metadata["outputs"]] == ["predict", "predict_proba"]
    assert triton_client.get_server_metadata()["name"] == "modelpilot-server"


@pytest.mark.parametrize("binary", [True, False], ids=["binary-tensors", "json-tensors"])
def test_infer_with_triton_client(triton_client, models_dir, iris_eval, binary):
    x, _ = iris_eval
    x32 = x[:20].astype(np.float32)
    tensor = triton.InferInput("input-0", list(x32.shape), "FP32")
    tensor.set_data_from_numpy(x32, binary_data=binary)
    outputs = [triton.InferRequestedOutput("predict", binary_data=binary),
               triton.InferRequestedOutput("predict_proba", binary_data=binary)]
    headers = None if binary else {"Content-Type": "application/json"}
    result = triton_client.infer("iris", [tensor], outputs=outputs, request_id="triton-1", headers=headers)

    expected = joblib.load(models_dir / "iris-good.joblib")
    np.testing.assert_array_equal(result.as_numpy("predict"), expected.predict(x32.astype(np.float64)))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected.predict_proba(x32.astype(np.float64)),
                               rtol=1e-12)
    assert result.get_response()["id"] == "triton-1"


def test_feedback_on_a_real_process(triton_client, server, iris_eval):
    x, y = iris_eval
    tensor = triton.InferInput("input-0", [5, 4], "FP64")
    tensor.set_data_from_numpy(x[:5])
    result = triton_client.infer("iris", [tensor])
    body = json.dumps({"id": result.get_response()["id"], "truth": y[:5].tolist()}).encode()
    request = urllib.request.Request(f"{server.url}/v2/models/iris/feedback", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        report = json.loads(response.read())
    assert report["scored_rows"] == 5
    assert report["correct"] == int(np.sum(result.as_numpy("predict") == y[:5]))
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 'modelpilot_feedback_total{model="iris",outcome="correct",revision="rev-p"}' in metrics
