"""Protocol codec without a server: canonical bytes (cache identity), the binary BYTES layout both ways, output
encoding of every datatype kind, and the response prefix."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from modelpilot_server.protocol import (
    ProtocolError,
    ResponseEncoder,
    TensorSpec,
    decode_infer_request,
    deserialize_bytes_tensor,
    encode_outputs,
    serialize_bytes_tensor,
)

INPUTS = (TensorSpec("input-0", "FP64", (-1, 2)),)
OUTPUTS = (TensorSpec("predict", "INT64", (-1,)),)


def decode(document, **kwargs):
    return decode_infer_request(orjson.dumps(document), INPUTS, OUTPUTS, ("predict",), **kwargs)


def tensor(data, datatype="FP64", shape=(1, 2)):
    return {"inputs": [{"name": "x", "datatype": datatype, "shape": list(shape), "data": data}]}


def test_canonical_bytes_ignore_spelling_but_not_values():
    a = decode(tensor([1, 2], "INT64")).canonical_bytes()
    b = decode(tensor([1.0, 2.0])).canonical_bytes()
    c = decode(tensor([[1.0, 2.0]])).canonical_bytes()
    d = decode(tensor([1.0, 2.5])).canonical_bytes()
    assert a == b == c != d


def test_inputs_are_converted_to_the_model_dtype():
    request = decode(tensor([1, 2], "INT32"))
    assert request.inputs[0].dtype == np.float64 and request.inputs[0].shape == (1, 2) and request.rows == 1


def test_bytes_layout_round_trip():
    values = np.array(["a", "héllo", ""], dtype=object)
    raw = serialize_bytes_tensor(values)
    assert raw[:4] == b"\x01\x00\x00\x00"
    assert list(deserialize_bytes_tensor(raw, "x")) == ["a", "héllo", ""]
    with pytest.raises(ProtocolError, match="truncated"):
        deserialize_bytes_tensor(raw[:-3], "x")


def test_binary_header_length_is_checked():
    with pytest.raises(ProtocolError, match="does not fit"):
        decode_infer_request(b"{}", INPUTS, OUTPUTS, ("predict",), header_length="10")
    with pytest.raises(ProtocolError, match="must be an integer"):
        decode_infer_request(b"{}", INPUTS, OUTPUTS, ("predict",), header_length="ten")


def test_leftover_binary_data_is_refused():
    head = orjson.dumps(tensor([1.0, 2.0]))
    with pytest.raises(ProtocolError, match="8 bytes of binary data belong to no input"):
        decode_infer_request(head + b"\0" * 8, INPUTS, OUTPUTS, ("predict",), header_length=str(len(head)))


@pytest.mark.parametrize(("array", "datatype", "data"), [
    (np.array([1, 2], dtype=np.int64), "INT64", [1, 2]),
    (np.array([0.5], dtype=np.float32), "FP32", [0.5]),
    (np.array([[0.25, 0.75]]), "FP64", [0.25, 0.75]),
    (np.array(["pos", "neg"], dtype=object), "BYTES", ["pos", "neg"]),
    (np.array(["a"]), "BYTES", ["a"]),
    (np.array([True]), "BOOL", [True]),
])
def test_encode_outputs(array, datatype, data):
    (encoded,) = orjson.loads(encode_outputs({"y": array}, ["y"]))
    assert encoded == {"name": "y", "datatype": datatype, "shape": list(array.shape), "data": data}


def test_response_encoder():
    body = ResponseEncoder("iris", "3").encode("id-1", b"[]")
    assert orjson.loads(body) == {"model_name": "iris", "model_version": "3", "id": "id-1", "outputs": []}
