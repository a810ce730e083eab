"""The plan and verdict cache: diskcache on disk (one machine), Redis for replicas on several machines, opened
from `REWARD_CACHE_URL` or a directory. Both keep values as JSON and answer their own readiness probe."""

from reward.cache.disk import CacheDirError, CacheStats, Store, cache_key, text_digest
from reward.cache.redis_store import RedisDown, RedisStore, cache_url, open_store

__all__ = [
    "CacheDirError",
    "CacheStats",
    "RedisDown",
    "RedisStore",
    "Store",
    "cache_key",
    "cache_url",
    "open_store",
    "text_digest",
]
