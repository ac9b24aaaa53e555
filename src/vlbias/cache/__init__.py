"""Embedding cache: each embedding is computed once per model identity and stimulus."""

from vlbias.cache.store import CacheEntry, DamagedCacheError, EmbeddingCache, ModelCache, default_cache_dir

__all__ = ["CacheEntry", "DamagedCacheError", "EmbeddingCache", "ModelCache", "default_cache_dir"]
