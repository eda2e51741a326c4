"""Model loading: file:// URIs, plain paths and http:// (a real local server), the sha256 check (before
deserializing), and a clear :class:`ModelLoadError` for every failure: missing file, HTTP error, unsupported scheme,
bytes that are not a model, an object without ``predict``.
"""

from __future__ import annotations

import hashlib
import io
import pickle

import joblib
import pytest
from modelpilot_server.loaders import ModelLoadError, deserialize, fetch, verify_sha256


async def test_fetch_file_uri_and_plain_path(models_dir):
    path = models_dir / "iris-good.joblib"
    assert await fetch(path.as_uri()) == path.read_bytes()
    assert await fetch(str(path)) == path.read_bytes()


async def test_fetch_http(models_dir, file_server):
    base = await file_server(models_dir)
    assert await fetch(f"{base}/iris-good.onnx") == (models_dir / "iris-good.onnx").read_bytes()
    with pytest.raises(ModelLoadError, match="answered 404"):
        await fetch(f"{base}/missing.joblib")


@pytest.mark.parametrize(("uri", "message"), [
    ("s3://bucket/model.joblib", "unsupported model URI scheme 's3'"),
    ("file:///nonexistent/model.joblib", "cannot read model file '/nonexistent/model.joblib'"),
    ("http://127.0.0.1:1/model.joblib", "cannot download"),
])
async def test_fetch_errors(uri, message):
    with pytest.raises(ModelLoadError, match=message):
        await fetch(uri)


def test_sha256_check():
    data = b"model bytes"
    verify_sha256(data, hashlib.sha256(data).hexdigest().upper())
    verify_sha256(data, None)
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        verify_sha256(data, "0" * 64)


def test_deserialize_both_formats(models_dir):
    sklearn_model = deserialize((models_dir / "iris-good.joblib").read_bytes(), "sklearn", "iris", "2")
    assert (sklearn_model.name, sklearn_model.version, sklearn_model.platform) == ("iris", "2", "sklearn")
    onnx_model = deserialize((models_dir / "iris-good.onnx").read_bytes(), "onnx", "iris", "2")
    assert [spec.name for spec in onnx_model.outputs] == ["label", "probabilities"]
    assert onnx_model.label_output == "label"


@pytest.mark.parametrize(("data", "model_format", "message"), [
    (b"not a pickle", "sklearn", "cannot load sklearn model"),
    (b"not a graph", "onnx", "cannot load onnx model"),
    (pickle.dumps({"weights": [1, 2]}), "sklearn", "dict has no predict method"),
    (b"", "pmml", "unknown model format 'pmml'"),
])
def test_deserialize_errors(data, model_format, message):
    with pytest.raises(ModelLoadError, match=message):
        deserialize(data, model_format, "m", "1")


def test_joblib_compressed_file(models_dir):
    buffer = io.BytesIO()
    joblib.dump(joblib.load(models_dir / "iris-good.joblib"), buffer, compress=3)
    assert deserialize(buffer.getvalue(), "sklearn", "iris", "1").inputs[0].shape == (-1, 4)
