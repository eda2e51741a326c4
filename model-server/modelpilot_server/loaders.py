"""Fetching model files and turning them into :class:`~.models.ServedModel` objects.

Loading is split in three steps so that each can fail with its own clear message: *fetch* the bytes (``file://``,
``http://``, ``https://`` or a plain path), *verify* the optional sha256, *deserialize* by format. Every failure is a
:class:`ModelLoadError`; the server reports its message on the readiness endpoints and stays not ready.

A joblib file is a pickle and runs code when loaded: pin the file with ``MODEL_SHA256`` when its source is not fully
trusted. The checksum is checked before anything is deserialized.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import urllib.parse
from pathlib import Path

import aiohttp

from .config import ServerConfig
from .models import OnnxModel, ServedModel, SklearnModel


class ModelLoadError(Exception):
    """The model could not be fetched, verified or deserialized."""


async def fetch(uri: str, *, session: aiohttp.ClientSession | None = None, timeout: float = 300.0) -> bytes:
    """The bytes behind ``uri``. An HTTP(S) fetch uses ``session`` when given, else a short-lived one."""
    scheme = urllib.parse.urlsplit(uri).scheme
    if scheme in ("http", "https"):
        return await _fetch_http(uri, session, timeout)
    if scheme == "file":
        path = Path(urllib.parse.unquote(urllib.parse.urlsplit(uri).path))
    elif scheme == "":
        path = Path(uri)
    else:
        raise ModelLoadError(f"unsupported model URI scheme {scheme!r} in {uri!r} (use file://, http:// or https://)")
    try:
        return await asyncio.to_thread(path.read_bytes)
    except OSError as error:
        raise ModelLoadError(f"cannot read model file {str(path)!r}: {error.strerror or error}") from error


async def _fetch_http(uri: str, session: aiohttp.ClientSession | None, timeout: float) -> bytes:
    own = session is None
    client = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
    try:
        async with client.get(uri) as response:
            if response.status != 200:
                raise ModelLoadError(f"GET {uri} answered {response.status} {response.reason}")
            return await response.read()
    except aiohttp.ClientError as error:
        raise ModelLoadError(f"cannot download {uri}: {error}") from error
    except asyncio.TimeoutError as error:
        raise ModelLoadError(f"downloading {uri} took longer than {timeout:g} s") from error
    finally:
        if own:
            await client.close()


def verify_sha256(data: bytes, expected: str | None) -> None:
    if expected is None:
        return
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.strip().lower():
        raise ModelLoadError(f"sha256 mismatch: expected {expected}, the model file has {actual}")


def deserialize(data: bytes, model_format: str, name: str, version: str, *, onnx_threads: int = 1) -> ServedModel:
    """Build a served model from file bytes. Blocking and possibly slow: call it off the event loop."""
    try:
        if model_format == "sklearn":
            import joblib

            return SklearnModel(joblib.load(io.BytesIO(data)), name, version)
        if model_format == "onnx":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = onnx_threads
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
            return OnnxModel(session, name, version)
    except ModelLoadError:
        raise
    except Exception as error:  # any unpickling / graph error is a load failure, reported verbatim
        raise ModelLoadError(f"cannot load {model_format} model: {type(error).__name__}: {error}") from error
    raise ModelLoadError(f"unknown model format {model_format!r}")


async def load_model(config: ServerConfig, *, session: aiohttp.ClientSession | None = None) -> ServedModel:
    """Fetch, verify and deserialize the model that ``config`` names."""
    data = await fetch(config.model_uri, session=session)
    verify_sha256(data, config.model_sha256)
    return await asyncio.to_thread(
        deserialize, data, config.model_format, config.model_name, config.model_version,
        onnx_threads=config.onnx_threads,
    )
