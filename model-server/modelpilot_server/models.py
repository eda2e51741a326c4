"""Served models: one small interface, one adapter per model format.

A :class:`ServedModel` describes its tensors (for metadata and request validation) and turns a batch of input arrays
into named output arrays. It knows nothing of HTTP, batching or caching. ``predict`` is called from the inference
thread, never from the event loop.

Decisions:

* scikit-learn estimators have no tensor names. A model is served with one input ``input-0`` of shape
  ``[-1, n_features]`` (FP64) or, for a pipeline that starts from raw text, ``[-1]`` (BYTES); outputs are ``predict``
  and, for probabilistic classifiers, ``predict_proba``. Only ``predict`` is computed unless asked for.
* ONNX models describe themselves; non-tensor outputs (e.g. the sequence-of-maps "ZipMap" that skl2onnx adds by default)
  are not served, since the protocol has no datatype for them.
* The *label output* is the first output. Ground-truth feedback is compared against it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

import numpy as np

from .protocol import TensorSpec


class ServedModel(Protocol):
    name: str
    version: str
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    default_outputs: tuple[str, ...]

    @property
    def label_output(self) -> str: ...

    def predict(self, inputs: tuple[np.ndarray, ...], outputs: Collection[str]) -> dict[str, np.ndarray]: ...


def _datatype_for(dtype: np.dtype) -> str:
    if dtype.kind in "OUS":
        return "BYTES"
    if dtype.kind in "iu":
        return "INT64"
    if dtype.kind == "b":
        return "BOOL"
    return "FP64"


class SklearnModel:
    """A fitted scikit-learn estimator (or pipeline) loaded from a joblib file."""

    platform = "sklearn"

    def __init__(self, estimator: Any, name: str, version: str) -> None:
        if not hasattr(estimator, "predict"):
            raise TypeError(f"{type(estimator).__name__} has no predict method")
        self.name = name
        self.version = version
        self._estimator = estimator
        n_features = getattr(estimator, "n_features_in_", None)
        if n_features is None:
            self.inputs = (TensorSpec("input-0", "BYTES", (-1,)),)
        else:
            self.inputs = (TensorSpec("input-0", "FP64", (-1, int(n_features))),)
        classes = getattr(estimator, "classes_", None)
        label_type = _datatype_for(np.asarray(classes).dtype) if classes is not None else "FP64"
        outputs = [TensorSpec("predict", label_type, (-1,))]
        if classes is not None and hasattr(estimator, "predict_proba"):
            outputs.append(TensorSpec("predict_proba", "FP64", (-1, len(classes))))
        self.outputs = tuple(outputs)
        self.default_outputs = ("predict",)

    @property
    def label_output(self) -> str:
        return "predict"

    def predict(self, inputs: tuple[np.ndarray, ...], outputs: Collection[str]) -> dict[str, np.ndarray]:
        (x,) = inputs
        results: dict[str, np.ndarray] = {}
        for name in outputs:
            results[name] = np.asarray(getattr(self._estimator, name)(x))
        return results


# onnxruntime type strings of the tensor element types we serve.
_ONNX_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


def _onnx_spec(node: Any) -> TensorSpec | None:
    datatype = _ONNX_TYPES.get(node.type)
    if datatype is None:
        return None
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (node.shape or []))
    return TensorSpec(node.name, datatype, shape)


class OnnxModel:
    """An ONNX graph run by onnxruntime on the CPU."""

    platform = "onnxruntime_onnx"

    def __init__(self, session: Any, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self._session = session
        inputs = [_onnx_spec(node) for node in session.get_inputs()]
        if any(spec is None for spec in inputs):
            raise TypeError("every ONNX model input must be a tensor")
        self.inputs = tuple(spec for spec in inputs if spec is not None)
        self.outputs = tuple(spec for node in session.get_outputs() if (spec := _onnx_spec(node)) is not None)
        if not self.outputs:
            raise TypeError("the ONNX model has no tensor output")
        self.default_outputs = tuple(spec.name for spec in self.outputs)
        self._feeds = tuple(spec.name for spec in self.inputs)
        self._object_inputs = tuple(spec.datatype == "BYTES" for spec in self.inputs)

    @property
    def label_output(self) -> str:
        return self.outputs[0].name

    def predict(self, inputs: tuple[np.ndarray, ...], outputs: Collection[str]) -> dict[str, np.ndarray]:
        names = list(outputs)
        feeds = {
            feed: array.astype(str) if is_object else array
            for feed, array, is_object in zip(self._feeds, inputs, self._object_inputs, strict=True)
        }
        return dict(zip(names, (np.asarray(value) for value in self._session.run(names, feeds)), strict=True))
