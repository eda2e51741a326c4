"""HTTP handlers and middlewares of the v2 REST API; thin glue over :mod:`.protocol`, the batcher, cache and store.

Status codes: unknown model or version 404; model not loaded (or loading failed) 503 with the reason; malformed JSON,
wrong shape, datatype or unknown tensor 400 naming the input; body larger than ``max_body_bytes`` 413; a value the
model itself refuses (scikit-learn raises ``ValueError``, e.g. for NaN) 400; anything else 500. Every error body is
``{"error": "..."}``, including aiohttp's own 404/405/413.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from . import __version__
from .cache import cache_key
from .feedback import parse_feedback
from .metrics import ServerMetrics
from .protocol import BINARY_HEADER, ProtocolError, decode_infer_request, encode_outputs, error_body, loads
from .state import CACHE, CONFIG, FEEDBACK, METRICS, STATE, Runtime

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(document: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    return web.Response(body=error_body(message), status=status, content_type="application/json")


# -- server ---------------------------------------------------------------------------------------------------------

async def server_metadata(request: web.Request) -> web.Response:
    return json_response({"name": "modelpilot-server", "version": __version__, "extensions": ["binary_tensor_data"]})


async def server_live(request: web.Request) -> web.Response:
    return json_response({"live": True})


async def server_ready(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.ready:
        return json_response({"ready": True})
    return json_response({"ready": False, "reason": _not_ready_reason(request)}, status=503)


def _not_ready_reason(request: web.Request) -> str:
    state = request.app[STATE]
    if state.draining:
        return "the server is shutting down"
    if state.load_error is not None:
        return f"model failed to load: {state.load_error}"
    return "the model is loading"


# -- model ----------------------------------------------------------------------------------------------------------

def _check_model(request: web.Request) -> None:
    config = request.app[CONFIG]
    name = request.match_info["name"]
    if name != config.model_name:
        raise ProtocolError(404, f"unknown model {name!r}; this server serves {config.model_name!r}")
    version = request.match_info.get("version")
    if version is not None and version != config.model_version:
        raise ProtocolError(404, f"unknown version {version!r} of model {name!r}; served version is "
                                 f"{config.model_version!r}")


def _runtime(request: web.Request) -> Runtime:
    _check_model(request)
    runtime = request.app[STATE].runtime
    if runtime is None:
        raise ProtocolError(503, f"model {request.match_info['name']!r} is not ready: {_not_ready_reason(request)}")
    return runtime


async def model_metadata(request: web.Request) -> web.Response:
    model = _runtime(request).model
    return json_response({
        "name": model.name,
        "versions": [model.version],
        "platform": model.platform,
        "inputs": [spec.metadata() for spec in model.inputs],
        "outputs": [spec.metadata() for spec in model.outputs],
    })


async def model_ready(request: web.Request) -> web.Response:
    _check_model(request)
    name = request.match_info["name"]
    if request.app[STATE].ready:
        return json_response({"name": name, "ready": True})
    return json_response({"name": name, "ready": False, "reason": _not_ready_reason(request)}, status=503)


async def infer(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    app = request.app
    model = runtime.model
    body = await request.read()
    decoded = decode_infer_request(
        body, model.inputs, model.outputs, model.default_outputs, request.headers.get(BINARY_HEADER),
    )
    label = runtime.label_output
    cache = app[CACHE]
    key = outputs_json = None
    if cache.enabled:
        key = cache_key(app[CONFIG].revision, decoded.canonical_bytes())
        outputs_json = await cache.get(key)
        app[METRICS].cache(outputs_json is not None)
    if outputs_json is None:
        compute = decoded.outputs if label in decoded.outputs else (*decoded.outputs, label)
        try:
            results = await runtime.batcher.submit(decoded.inputs, compute)
        except ValueError as error:
            raise ProtocolError(400, f"the model rejected the input: {error}") from None
        outputs_json = encode_outputs(results, decoded.outputs)
        labels = results[label]
        if key is not None:
            await cache.put(key, outputs_json)
    else:
        labels = outputs_json if label in decoded.outputs else None
    response_id = decoded.id or app[STATE].new_id()
    app[FEEDBACK].record(response_id, decoded.rows, labels)
    return web.Response(body=runtime.encoder.encode(response_id, outputs_json), content_type="application/json")


async def feedback(request: web.Request) -> web.Response:
    _runtime(request)
    entries = parse_feedback(loads(await request.read()))
    report = request.app[FEEDBACK].score(entries)
    request.app[METRICS].feedback(report.correct, report.incorrect)
    return json_response(report.as_json())


# -- middlewares ----------------------------------------------------------------------------------------------------

async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as the protocol's ``{"error": ...}`` body, including aiohttp's own HTTP exceptions."""
    try:
        return await handler(request)
    except ProtocolError as error:
        return error_response(error.status, error.message)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        text = error.text or ""
        if text.startswith(str(error.status)) or not text:  # aiohttp's generic "404: Not Found" says too little
            text = f"{error.reason}: {request.method} {request.path}"
        return error_response(error.status, text)
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.path)
        return error_response(500, "internal server error")


protocol_errors = web.middleware(answer)


def measure(metrics: ServerMetrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware with metrics on: :func:`answer` plus latency, status code and in-flight count per request.

    One middleware rather than two stacked: it calls :func:`answer` directly, so metrics add a function call and a few
    additions to a request, not another layer of aiohttp's middleware chain.
    """
    clock = time.perf_counter
    endpoint_of = {name: name.removesuffix("_version") for *_, name in ROUTES} | {"metrics": "metrics"}

    @web.middleware
    async def measured(request: web.Request, handler: Handler) -> web.StreamResponse:
        metrics.inflight += 1
        start = clock()
        code = 500
        try:
            response = await answer(request, handler)
            code = response.status
            return response
        finally:
            metrics.request(endpoint_of.get(request.match_info.route.name, "other"), code, clock() - start)
            metrics.inflight -= 1

    return measured


# -- routing --------------------------------------------------------------------------------------------------------

# aiohttp tries resources in order: the hot paths come first.
ROUTES: tuple[tuple[str, str, Handler, str], ...] = (
    ("POST", "/v2/models/{name}/infer", infer, "infer"),
    ("POST", "/v2/models/{name}/feedback", feedback, "feedback"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", infer, "infer_version"),
    ("GET", "/v2/health/live", server_live, "server_live"),
    ("GET", "/v2/health/ready", server_ready, "server_ready"),
    ("GET", "/v2", server_metadata, "server_metadata"),
    ("GET", "/v2/models/{name}", model_metadata, "model_metadata"),
    ("GET", "/v2/models/{name}/versions/{version}", model_metadata, "model_metadata_version"),
    ("GET", "/v2/models/{name}/ready", model_ready, "model_ready"),
    ("GET", "/v2/models/{name}/versions/{version}/ready", model_ready, "model_ready_version"),
)

# The ``endpoint`` label values; versioned routes report under their plain form.
ENDPOINTS = (*dict.fromkeys(name.removesuffix("_version") for *_, name in ROUTES), "metrics")


def add_routes(app: web.Application) -> None:
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
