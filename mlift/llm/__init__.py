"""LLM backends behind one interface, and the per-request cache in front of them."""

from __future__ import annotations

from pathlib import Path

from mlift.llm.base import (
    Backend,
    BatchLLMConfig,
    Completion,
    GenParams,
    LLMConfig,
    OpenAILLMConfig,
    Request,
    TransformersLLMConfig,
    VLLMConfig,
)
from mlift.llm.cache import CachedLLM, RequestCache

__all__ = ["Backend", "BatchLLMConfig", "CachedLLM", "Completion", "GenParams", "LLMConfig", "OpenAILLMConfig", "Request", "RequestCache",
           "TransformersLLMConfig", "VLLMConfig", "make_backend", "make_llm"]


def make_backend(cfg: LLMConfig, seed: int = 0, run_dir: str | Path | None = None) -> Backend:
    if cfg.backend == "transformers":
        from mlift.llm.hf import TransformersBackend

        return TransformersBackend(cfg)
    if cfg.backend == "openai":
        from mlift.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg)
    if cfg.backend == "vllm":
        from mlift.llm.vllm_backend import VLLMBackend

        return VLLMBackend(cfg, seed=seed)
    if cfg.backend == "batch":
        from mlift.llm.batch_backend import BatchBackend

        if run_dir is None:
            raise ValueError("backend batch writes its files into the run directory: none given")
        return BatchBackend(cfg, Path(run_dir) / "llm_batch")
    raise ValueError(f"unknown backend {cfg.backend!r}")


def make_llm(cfg: LLMConfig, cache_dir: str | Path | None, seed: int = 0) -> CachedLLM:
    """The configured backend behind the per-request cache (`<cache_dir>/llm_cache/<writer>.sqlite`, shared by all
    stages; see RequestCache)."""
    cache = RequestCache(Path(cache_dir) / "llm_cache.sqlite") if cfg.cache and cache_dir is not None else None
    discount = getattr(cfg, "batch_discount", 1.0)  # the batch backend's requests cost the batch price
    return CachedLLM(make_backend(cfg, seed, cache_dir), cache, cfg.params, seed=seed, batch_size=cfg.batch_size,
                     prices=(discount * cfg.price_per_1m_prompt, discount * cfg.price_per_1m_completion),
                     lookahead=getattr(cfg, "lookahead", None))
