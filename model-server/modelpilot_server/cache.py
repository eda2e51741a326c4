"""Response cache: the encoded outputs of a request, keyed by model revision and the request's canonical bytes.

Two backends behind one small interface (``get``/``put``/``close``), plus a do-nothing one:

* :class:`MemoryCache`, an in-process LRU bounded by total bytes, with a TTL. Entries of a pod are lost on restart,
  which is fine for a cache.
* :class:`RedisCache`, shared by the replicas of a revision (redis-py asyncio). Redis is an optimisation, never a
  dependency: any Redis error or timeout counts as a miss, the request is computed as usual, and Redis is not asked
  again for ``retry_seconds`` so that an outage costs one short timeout, not one per request.
* :class:`NoCache` when caching is off.

What is cached is the JSON ``outputs`` array only; the response id is per request and is spliced in afterwards.
The key contains the revision (a new model never answers with an old model's outputs) and a BLAKE2b digest of the
canonical input bytes (dtype, shape, values and requested outputs), so JSON spelling (``1`` vs ``1.0``) does not matter.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def cache_key(revision: str, canonical: bytes) -> bytes:
    return revision.encode() + b":" + hashlib.blake2b(canonical, digest_size=16).digest()


class ResponseCache(Protocol):
    enabled: bool

    async def get(self, key: bytes) -> bytes | None: ...

    async def put(self, key: bytes, value: bytes) -> None: ...

    async def close(self) -> None: ...


class NoCache:
    enabled = False

    async def get(self, key: bytes) -> bytes | None:
        return None

    async def put(self, key: bytes, value: bytes) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryCache:
    """LRU over ``(expires_at, value)``; the size bound counts key and value bytes."""

    enabled = True

    def __init__(self, max_bytes: int, ttl_seconds: float, clock: Clock = time.monotonic) -> None:
        self._entries: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        self._max_bytes = max_bytes
        self._ttl = ttl_seconds
        self._clock = clock
        self.size_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: bytes) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: bytes, value: bytes) -> None:
        size = len(key) + len(value)
        if size > self._max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + self._ttl, value)
        self.size_bytes += size
        while self.size_bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: bytes) -> None:
        _, value = self._entries.pop(key)
        self.size_bytes -= len(key) + len(value)

    async def close(self) -> None:
        self._entries.clear()
        self.size_bytes = 0


class RedisCache:
    """Redis-backed cache that degrades to "no cache" while Redis is unreachable."""

    enabled = True

    def __init__(
        self,
        url: str,
        ttl_seconds: float,
        *,
        timeout_seconds: float = 0.05,
        retry_seconds: float = 5.0,
        prefix: str = "modelpilot:",
        clock: Clock = time.monotonic,
    ) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds, retry_on_timeout=False,
        )
        self._errors = (redis.RedisError, OSError, asyncio.TimeoutError)
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._timeout = timeout_seconds
        self._retry = retry_seconds
        self._prefix = prefix.encode()
        self._clock = clock
        self._down_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def available(self) -> bool:
        return self._clock() >= self._down_until

    async def get(self, key: bytes) -> bytes | None:
        if not self.available:
            return None
        try:
            return await asyncio.wait_for(self._redis.get(self._prefix + key), self._timeout)
        except self._errors as error:
            self._trip(error)
            return None

    async def put(self, key: bytes, value: bytes) -> None:
        """Stores in the background: a miss already paid for the model call and should not also wait for Redis."""
        if not self.available:
            return
        task = asyncio.get_running_loop().create_task(self._put(key, value))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put(self, key: bytes, value: bytes) -> None:
        try:
            await asyncio.wait_for(self._redis.set(self._prefix + key, value, px=self._ttl_ms), self._timeout)
        except self._errors as error:
            self._trip(error)

    def _trip(self, error: BaseException) -> None:
        if self.available:
            log.warning("response cache unavailable for %.1f s: %s: %s", self._retry, type(error).__name__, error)
        self._down_until = self._clock() + self._retry

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._redis.aclose()


def make_cache(max_bytes: int, ttl_seconds: float, redis_url: str | None, *,
               redis_timeout_seconds: float, redis_retry_seconds: float, namespace: str) -> ResponseCache:
    """The configured backend: Redis when a URL is given, else in-process when a size is given, else none."""
    if redis_url:
        return RedisCache(redis_url, ttl_seconds, timeout_seconds=redis_timeout_seconds,
                          retry_seconds=redis_retry_seconds, prefix=f"modelpilot:{namespace}:")
    if max_bytes > 0:
        return MemoryCache(max_bytes, ttl_seconds)
    return NoCache()
