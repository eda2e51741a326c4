"""Running the application as a process, with graceful drain.

On SIGTERM (what Kubernetes sends before killing a pod) or SIGINT:

1. readiness turns false at once, so the endpoints controller takes the pod out of its Services;
2. the server keeps answering for ``drain_delay_seconds``, because load balancers and kube-proxy learn about the
   change with a delay and still send requests in that window;
3. it stops listening and waits up to ``drain_timeout_seconds`` for in-flight requests (queued in the batcher or
   running in the model) to be answered;
4. cleanup runs (batcher, cache, inference thread) and the process exits with status 0.

A second signal during the delay skips the rest of the delay. The pod's ``terminationGracePeriodSeconds`` should exceed
delay plus timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from .app import create_app
from .config import ServerConfig
from .state import STATE

log = logging.getLogger(__name__)


async def serve(config: ServerConfig) -> None:
    app = create_app(config)
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=config.drain_timeout_seconds,
        access_log=logging.getLogger("aiohttp.access") if config.access_log else None,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=1024,
                       shutdown_timeout=config.drain_timeout_seconds)
    await site.start()
    log.info("serving model %s (revision %s) on http://%s:%d", config.model_name, config.revision,
             config.host, config.port)

    loop = asyncio.get_running_loop()
    signals = asyncio.Queue[signal.Signals]()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals.put_nowait, sig)
    try:
        received = await signals.get()
        app[STATE].draining = True
        log.info("%s received: not ready; serving for %.1f s more, then draining", received.name,
                 config.drain_delay_seconds)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(signals.get(), config.drain_delay_seconds)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        log.info("drained; exiting")
