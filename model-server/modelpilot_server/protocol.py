"""Open Inference Protocol (KServe v2) REST encoding: request decoding, validation, response encoding.

Pure functions over bytes and numpy arrays, no aiohttp: the handlers in :mod:`.routes` stay thin and every protocol rule
is testable without a server.

Decisions:

* Every error is a :class:`ProtocolError` carrying the HTTP status; the handlers render it as the protocol's error body
  ``{"error": "..."}``. Messages about a tensor always name the input, because a client with several inputs cannot act
  on "wrong shape".
* Inputs are converted to the dtype the model declares (e.g. INT64 or FP32 data for an FP64 model) at decode time, so
  the batcher can concatenate any requests and the cache key does not depend on how a client spelled a number.
* When a model has exactly one input, the request's single input is accepted whatever its name: scikit-learn models have
  no input names, and clients written for other v2 servers call it ``input-0``, ``predict`` or ``x``. With several
  inputs, names must match.
* Both JSON tensors and the binary tensor extension (``Inference-Header-Content-Length``, as sent by ``tritonclient``
  by default) are accepted. Responses are always JSON tensors, which every v2 client reads.
* The response is assembled from pre-encoded pieces: the model-specific prefix is encoded once, and the ``outputs``
  array is encoded once per model call result and may come straight from the response cache.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

BINARY_HEADER = "Inference-Header-Content-Length"

# v2 datatype -> numpy dtype. BYTES tensors are object arrays of ``str`` (or ``bytes`` when not valid UTF-8).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}


class ProtocolError(Exception):
    """A request the protocol refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ProtocolError:
    return ProtocolError(400, message)


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Name, v2 datatype and shape (``-1`` for a variable dimension; the first is the batch dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class InferRequest:
    """A decoded, validated inference request: one array per model input, in the model's input order."""

    id: str | None
    inputs: tuple[np.ndarray, ...]
    outputs: tuple[str, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.inputs[0].shape[0]) if self.inputs[0].ndim else 1

    def canonical_bytes(self) -> bytes:
        """Bytes that identify the request's tensors and requested outputs, independent of JSON spelling."""
        parts: list[bytes] = [",".join(self.outputs).encode()]
        for array in self.inputs:
            parts.append(f"|{array.dtype.str}{array.shape}|".encode())
            if array.dtype == object:
                parts.append(serialize_bytes_tensor(array))
            else:
                parts.append(np.ascontiguousarray(array).tobytes())
        return b"".join(parts)


_DATATYPE_OF: dict[np.dtype, str] = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}


def datatype_of(array: np.ndarray) -> str:
    """The v2 datatype for a numpy array (strings and objects are BYTES)."""
    if array.dtype.kind in "OUS":
        return "BYTES"
    try:
        return _DATATYPE_OF[array.dtype]
    except KeyError:
        raise ValueError(f"no v2 datatype for numpy dtype {array.dtype}") from None


def loads(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise bad_request(f"malformed JSON: {error}") from None
    if not isinstance(document, dict):
        raise bad_request("request body must be a JSON object")
    return document


def decode_infer_request(
    body: bytes,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    default_outputs: tuple[str, ...],
    header_length: str | None = None,
) -> InferRequest:
    """Decode and validate an infer request body against a model's signature."""
    binary = b""
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError:
            raise bad_request(f"{BINARY_HEADER} must be an integer, not {header_length!r}") from None
        if not 0 <= length <= len(body):
            raise bad_request(f"{BINARY_HEADER} {length} does not fit a body of {len(body)} bytes")
        body, binary = body[:length], body[length:]
    document = loads(body)

    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request("'id' must be a string")
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise bad_request("'parameters' must be an object")

    raw_inputs = document.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise bad_request("'inputs' must be a non-empty list of tensors")
    arrays = _decode_inputs(raw_inputs, inputs, binary)
    return InferRequest(
        id=request_id,
        inputs=arrays,
        outputs=_requested_outputs(document.get("outputs"), outputs, default_outputs),
        parameters=parameters,
    )


def _decode_inputs(raw_inputs: list[Any], specs: tuple[TensorSpec, ...], binary: bytes) -> tuple[np.ndarray, ...]:
    if len(raw_inputs) != len(specs):
        expected = ", ".join(spec.name for spec in specs)
        raise bad_request(f"model expects {len(specs)} input(s) ({expected}), request has {len(raw_inputs)}")
    by_name = {spec.name: spec for spec in specs}
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for raw in raw_inputs:
        if not isinstance(raw, dict):
            raise bad_request("each input must be an object with name, datatype, shape and data")
        name = raw.get("name")
        if not isinstance(name, str):
            raise bad_request("each input needs a string 'name'")
        spec = specs[0] if len(specs) == 1 else by_name.get(name)
        if spec is None:
            raise bad_request(f"unknown input {name!r}; model inputs are {', '.join(by_name)}")
        if spec.name in arrays:
            raise bad_request(f"input {name!r} is given twice")
        array, offset = _decode_tensor(raw, name, spec, binary, offset)
        arrays[spec.name] = array
    if offset != len(binary):
        raise bad_request(f"{len(binary) - offset} bytes of binary data belong to no input")
    rows = {array.shape[0] for array in arrays.values()}
    if len(rows) > 1:
        raise bad_request(f"inputs disagree on the batch dimension: {sorted(rows)}")
    return tuple(arrays[spec.name] for spec in specs)


def _decode_tensor(
    raw: dict[str, Any], name: str, spec: TensorSpec, binary: bytes, offset: int
) -> tuple[np.ndarray, int]:
    datatype = raw.get("datatype")
    if datatype not in DATATYPES:
        raise bad_request(f"input {name!r}: unknown datatype {datatype!r}")
    if (datatype == "BYTES") != (spec.datatype == "BYTES"):
        raise bad_request(f"input {name!r}: datatype {datatype} is not accepted, model expects {spec.datatype}")
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise bad_request(f"input {name!r}: shape must be a list of non-negative integers")
    if len(shape) != len(spec.shape) or any(want not in (-1, got)
                                            for want, got in zip(spec.shape, shape, strict=True)):
        raise bad_request(f"input {name!r}: shape {shape} does not match model shape {list(spec.shape)}")
    size = math.prod(shape)

    parameters = raw.get("parameters") or {}
    binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if binary_size is not None:
        if not isinstance(binary_size, int) or offset + binary_size > len(binary):
            raise bad_request(f"input {name!r}: binary_data_size {binary_size!r} exceeds the binary data")
        chunk = binary[offset:offset + binary_size]
        offset += binary_size
        array = _from_binary(chunk, datatype, name)
    else:
        if "data" not in raw:
            raise bad_request(f"input {name!r}: no 'data'")
        array = _from_json(raw["data"], datatype, name)

    if array.size != size:
        raise bad_request(f"input {name!r}: {array.size} values do not fill shape {shape} ({size} values)")
    target = DATATYPES[spec.datatype]
    if array.dtype != target:
        array = array.astype(target)
    return array.reshape(shape), offset


def _from_json(data: Any, datatype: str, name: str) -> np.ndarray:
    if not isinstance(data, list):
        data = [data]
    try:
        if datatype == "BYTES":
            array = np.array(data, dtype=object)
            if array.dtype != object or not all(isinstance(v, str) for v in array.flat):
                raise ValueError("BYTES data must be strings")
            return array.reshape(-1)
        return np.asarray(data, dtype=DATATYPES[datatype]).reshape(-1)
    except (ValueError, TypeError, OverflowError) as error:
        raise bad_request(f"input {name!r}: data is not valid {datatype}: {error}") from None


def _from_binary(chunk: bytes, datatype: str, name: str) -> np.ndarray:
    if datatype == "BYTES":
        return deserialize_bytes_tensor(chunk, name)
    dtype = DATATYPES[datatype].newbyteorder("<")
    if len(chunk) % dtype.itemsize:
        raise bad_request(f"input {name!r}: {len(chunk)} binary bytes are not a whole number of {datatype}")
    return np.frombuffer(chunk, dtype=dtype)


def serialize_bytes_tensor(array: np.ndarray) -> bytes:
    """The binary extension's BYTES layout: each element as a 4-byte little-endian length, then its bytes."""
    parts = []
    for value in array.flat:
        raw = value.encode() if isinstance(value, str) else bytes(value)
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


def deserialize_bytes_tensor(chunk: bytes, name: str) -> np.ndarray:
    values: list[str | bytes] = []
    offset = 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise bad_request(f"input {name!r}: truncated BYTES element length")
        (length,) = struct.unpack_from("<I", chunk, offset)
        offset += 4
        raw = chunk[offset:offset + length]
        if len(raw) != length:
            raise bad_request(f"input {name!r}: truncated BYTES element")
        offset += length
        try:
            values.append(raw.decode())
        except UnicodeDecodeError:
            values.append(raw)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _requested_outputs(raw: Any, outputs: tuple[TensorSpec, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    if raw is None:
        return default
    if not isinstance(raw, list) or not raw:
        raise bad_request("'outputs' must be a non-empty list")
    known = {spec.name for spec in outputs}
    names: list[str] = []
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in known:
            raise bad_request(f"unknown output {name!r}; model outputs are {', '.join(sorted(known))}")
        if name not in names:
            names.append(name)
    return tuple(names)


def encode_outputs(results: Mapping[str, np.ndarray], names: Iterable[str]) -> bytes:
    """The JSON ``outputs`` array for the named results; the cacheable part of a response."""
    tensors = []
    for name in names:
        array = results[name]
        datatype = datatype_of(array)
        data = _bytes_to_text(array) if datatype == "BYTES" else np.ascontiguousarray(array).reshape(-1)
        tensors.append({"name": name, "datatype": datatype, "shape": list(array.shape), "data": data})
    return orjson.dumps(tensors, option=orjson.OPT_SERIALIZE_NUMPY)


def _bytes_to_text(array: np.ndarray) -> list[str]:
    return [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in array.reshape(-1).tolist()]


def decode_output(outputs_json: bytes, name: str) -> list[Any] | None:
    """The flat data of one output from an encoded ``outputs`` array (used for cached responses)."""
    for tensor in orjson.loads(outputs_json):
        if tensor.get("name") == name:
            return tensor.get("data")
    return None


class ResponseEncoder:
    """Builds infer responses for one model; the constant prefix is encoded once."""

    __slots__ = ("_prefix",)

    def __init__(self, model_name: str, model_version: str) -> None:
        head = orjson.dumps({"model_name": model_name, "model_version": model_version})
        self._prefix = head[:-1] + b',"id":'

    def encode(self, request_id: str, outputs_json: bytes) -> bytes:
        return b"".join((self._prefix, orjson.dumps(request_id), b',"outputs":', outputs_json, b"}"))


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
