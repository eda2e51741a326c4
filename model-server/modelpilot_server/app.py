"""The application factory.

``create_app(config)`` builds a complete, independent application: its own metrics registry, cache, feedback store and
inference thread, so tests and benchmarks can run several in one process. Everything is created here, before the app
is frozen; the cleanup contexts only start and stop things:

1. the model is loaded in a background task, so the server answers liveness (and says "loading" on readiness) while
   a large model downloads; a failed load leaves the server up, not ready, with the reason on the readiness endpoints;
2. on cleanup, which aiohttp runs after in-flight requests have finished, the batcher stops, the cache closes and the
   inference thread ends.

``load`` is injectable (a coroutine from config to model), the default being :func:`.loaders.load_model`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from .batching import AdaptiveBatcher
from .cache import make_cache
from .config import ServerConfig
from .feedback import FeedbackStore
from .loaders import ModelLoadError, load_model
from .metrics import NullMetrics, ServerMetrics
from .models import ServedModel
from .protocol import ResponseEncoder, decode_output
from .routes import ENDPOINTS, add_routes, measure, protocol_errors
from .state import CACHE, CONFIG, EXECUTOR, FEEDBACK, METRICS, STATE, Runtime, ServerState

log = logging.getLogger(__name__)

Loader = Callable[[ServerConfig], Awaitable[ServedModel]]


def create_app(config: ServerConfig, *, load: Loader = load_model) -> web.Application:
    metrics: ServerMetrics | NullMetrics
    registry = CollectorRegistry(auto_describe=True)
    if config.metrics:
        metrics = ServerMetrics(registry, config.model_name, config.revision, ENDPOINTS)
        middleware = measure(metrics)
    else:
        metrics = NullMetrics()
        middleware = protocol_errors

    app = web.Application(middlewares=[middleware], client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[STATE] = ServerState()
    app[METRICS] = metrics
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelpilot-inference")
    app[CACHE] = make_cache(
        config.cache_max_bytes, config.cache_ttl_seconds, config.redis_url,
        redis_timeout_seconds=config.redis_timeout_seconds, redis_retry_seconds=config.redis_retry_seconds,
        namespace=f"{config.model_name}:{config.revision}",
    )
    app[FEEDBACK] = FeedbackStore(config.feedback_max_rows, config.feedback_ttl_seconds, decode=_label_decoder(app))

    add_routes(app)
    if config.metrics:
        app.router.add_get("/metrics", make_aiohttp_handler(registry), name="metrics")
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(_model(load))
    return app


def _label_decoder(app: web.Application) -> Callable[[bytes], list | None]:
    def decode(outputs_json: bytes) -> list | None:
        runtime = app[STATE].runtime
        return None if runtime is None else decode_output(outputs_json, runtime.label_output)

    return decode


async def _resources(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[CACHE].close()
    # A model call that outlived the drain timeout may still be running: wait for it without blocking the loop.
    await asyncio.to_thread(app[EXECUTOR].shutdown, wait=True, cancel_futures=True)


def _model(load: Loader) -> Callable[[web.Application], AsyncIterator[None]]:
    async def model_context(app: web.Application) -> AsyncIterator[None]:
        state = app[STATE]
        state.loading = asyncio.get_running_loop().create_task(_load(app, load), name="model-load")
        yield
        state.loading.cancel()
        await asyncio.gather(state.loading, return_exceptions=True)
        if state.runtime is not None:
            await state.runtime.batcher.stop()

    return model_context


async def _load(app: web.Application, load: Loader) -> None:
    config, state, metrics = app[CONFIG], app[STATE], app[METRICS]
    log.info("loading model %s version %s from %s", config.model_name, config.model_version, config.model_uri)
    try:
        model = await load(config)
    except ModelLoadError as error:
        state.load_error = str(error)
        log.error("model %s failed to load: %s", config.model_name, error)
        return
    except Exception as error:
        state.load_error = f"{type(error).__name__}: {error}"
        log.exception("model %s failed to load", config.model_name)
        return
    batcher = AdaptiveBatcher(model.predict, app[EXECUTOR], config.max_batch_size, observe_batch=metrics.batch)
    batcher.start()
    state.runtime = Runtime(model, batcher, ResponseEncoder(model.name, model.version), model.label_output)
    log.info("model %s is ready: inputs %s, outputs %s", config.model_name,
             [spec.metadata() for spec in model.inputs], [spec.name for spec in model.outputs])
