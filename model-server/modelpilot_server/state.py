"""Typed application keys and the mutable serving state they point to.

Kept apart from :mod:`.app` (which builds the application) and :mod:`.routes` (which reads it) so that neither imports
the other.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aiohttp import web

from .batching import AdaptiveBatcher
from .cache import ResponseCache
from .config import ServerConfig
from .feedback import FeedbackStore
from .metrics import NullMetrics, ServerMetrics
from .models import ServedModel
from .protocol import ResponseEncoder


@dataclass(slots=True)
class Runtime:
    """What exists once the model is loaded; its presence is what makes the server ready."""

    model: ServedModel
    batcher: AdaptiveBatcher
    encoder: ResponseEncoder
    label_output: str


@dataclass(slots=True)
class ServerState:
    runtime: Runtime | None = None
    load_error: str | None = None
    draining: bool = False
    loading: asyncio.Task[None] | None = None
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _id_prefix: str = field(default_factory=lambda: secrets.token_hex(6))

    @property
    def ready(self) -> bool:
        return self.runtime is not None and not self.draining

    def new_id(self) -> str:
        """A response id unique across processes: a random per-process prefix and a counter (cheaper than uuid4)."""
        return f"{self._id_prefix}-{next(self._ids)}"


CONFIG = web.AppKey("config", ServerConfig)
STATE = web.AppKey("state", ServerState)
METRICS = web.AppKey("metrics", ServerMetrics | NullMetrics)
CACHE = web.AppKey("cache", ResponseCache)
FEEDBACK = web.AppKey("feedback", FeedbackStore)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
