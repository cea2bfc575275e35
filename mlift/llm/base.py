"""The one small interface every LLM backend implements: a batch of requests + generation params -> completions."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field

from mlift.fingerprint import ChatTemplateRef
from mlift.recipe import Schema


@dataclass
class Request:
    """Chat messages (for instruct models) or a raw prompt (for base models / completion endpoints)."""

    messages: list[dict[str, str]] | None = None
    prompt: str | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a Request has either messages or a prompt, not both or neither")

    def to_json(self) -> dict[str, Any]:
        return {"messages": self.messages} if self.messages is not None else {"prompt": self.prompt}


# Failures carry their category in the error text, because every stage copies a completion's error into the
# quarantine detail: the runner reads it back from there (mlift/runner/stage.py) without each stage knowing about it.
TRANSIENT = "[transient]"  # connection, timeout, 429, 5xx, an exception in the backend: worth retrying on a rerun
PROMPT_TOO_LONG = "prompt_too_long"  # longer than the model's context: never sent, quarantined for good


def transient_error(message: str) -> str:
    return f"{TRANSIENT} {message}"


def is_transient(text: str | None) -> bool:
    return bool(text) and TRANSIENT in text


# A request handed to an offline batch job (mlift/llm/batch_backend.py) and not answered yet: its record stays pending
# like a transient failure, but waiting does not count as an attempt (max_attempts counts failures, not reruns that
# find the batch still running).
WAITING = "[waiting]"


def waiting_error(message: str) -> str:
    return f"{TRANSIENT} {WAITING} {message}"


def is_waiting(text: str | None) -> bool:
    return bool(text) and WAITING in text


@dataclass
class Completion:
    """The text, or the error that a request ended with after retries (then the record goes to quarantine, or stays
    pending for the next run when the error is transient)."""

    text: str | None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    @property
    def transient(self) -> bool:
        return is_transient(self.error)


class GenParams(Schema):
    """Generation parameters; part of every cache key."""

    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None  # None: the recipe's seed
    json_schema: dict[str, Any] | None = Field(None, description="ask for a JSON object of this schema through the "
                                               "backend's structured output, where it has one (see `structured`)")


OnDone = Callable[[list[tuple[int, Completion]]], None]


class Backend(Protocol):
    """`generate` returns one completion per request, in order; it calls `on_done([(i, completion), ...])` as soon as
    requests finish (a micro-batch at a time, or one by one for HTTP), so the cache stores them at once and a kill
    loses only what was really in flight.

    A backend with `concurrent = True` may be called from several threads at once and keeps at most `window` requests
    in flight across all calls (the runner then keeps many batches going: mlift/llm/scheduler.py); without it, calls
    come one at a time (a local, compute-bound model batching on its own)."""

    backend: str
    model: str
    concurrent: bool
    window: int

    def generate(self, requests: list[Request], params: GenParams, on_done: OnDone | None = None) -> list[Completion]: ...

    def identity(self) -> dict[str, Any]:
        """What, besides the request and params, determines the output (for the cache key)."""
        ...


class _LLMBase(Schema):
    model: str = Field(description="hub id or local path (transformers/vllm) or served model name (openai)")
    params: GenParams = Field(default_factory=GenParams)
    batch_size: int = Field(16, ge=1, description="requests handed to the backend at once")
    cache: bool = True
    price_per_1m_prompt: float = 0.0
    price_per_1m_completion: float = 0.0


PromptTooLong = Literal["quarantine", "truncate_left", "truncate_right"]


class TransformersLLMConfig(_LLMBase):
    backend: Literal["transformers"]
    max_model_len: int | None = Field(None, ge=1, description="context length (prompt + new tokens); default: the "
                                      "model config's max_position_embeddings")
    prompt_too_long: PromptTooLong = Field("quarantine", description="a longer prompt is quarantined (prompt_too_long) "
                                           "or cut to fit, keeping its end (truncate_left) or its start (truncate_right)")
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    gguf_file: str | None = None
    revision: str | None = None
    chat_template: ChatTemplateRef | None = Field(None, description="Jinja chat template for tokenizers without one")
    trust_remote_code: bool = False
    adapter: str | None = Field(None, description="PEFT/LoRA adapter directory applied on top of `model` (merged)")
    tokenizer: str | None = Field(None, description="load the tokenizer from here (e.g. the adapter's dir; default: model)")


class OpenAILLMConfig(_LLMBase):
    backend: Literal["openai"]
    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1; None: the OpenAI API")
    api_key_env: str = Field("OPENAI_API_KEY", description="name of the environment variable holding the key")
    concurrency: int = Field(16, ge=1, description="requests in flight at once, kept full across batches and shards")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0)
    batch_size: int = Field(128, ge=1, description="unused: requests stream to the server (kept for older recipes)")
    lookahead: int | None = Field(None, ge=1, description="records a stage holds at once (in flight, or finished and "
                                  "waiting for an earlier one, since outputs keep the input order); default 32 x "
                                  "concurrency, enough for heavy-tailed latencies")


class VLLMConfig(_LLMBase):
    backend: Literal["vllm"]
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = None
    prompt_too_long: PromptTooLong = "quarantine"
    dtype: str = "auto"
    revision: str | None = None
    batch_size: int = Field(1024, ge=1, description="requests kept queued in the engine; the stage holds "
                            "`lookahead` records (default 32 x this) so that vLLM always has the next ones")
    lookahead: int | None = Field(None, ge=1, description="records a stage holds at once (in flight, or finished and "
                                  "waiting for an earlier one); default 32 x batch_size")
    adapter: str | None = Field(None, description="LoRA adapter directory (served through vLLM's LoRARequest)")
    tokenizer: str | None = Field(None, description="load the tokenizer from here (default: model)")
    chat_template: ChatTemplateRef | None = Field(None, description="Jinja chat template passed to LLM.chat (default: the tokenizer's)")
    max_lora_rank: int = Field(64, ge=1)


class BatchLLMConfig(_LLMBase):
    """Requests written to an offline batch file instead of sent to a server (mlift/llm/batch_backend.py): a run
    writes what is not cached, the job runs, a rerun reads the results into the cache and completes the stage."""

    backend: Literal["batch"]
    runner: Literal["openai_batch", "vllm_run_batch"] = Field(
        "openai_batch", description="openai_batch: upload and run through the OpenAI Batch API (files/batches "
        "endpoints at base_url); vllm_run_batch: you run `vllm run-batch -i <requests> -o <results>` (e.g. a Slurm job)")
    base_url: str | None = Field(None, description="openai_batch: the API (None: OpenAI's) or a server with its "
                                 "/files and /batches endpoints")
    api_key_env: str = Field("OPENAI_API_KEY", description="name of the environment variable holding the key")
    completion_window: str = "24h"
    wait_seconds: float = Field(0.0, ge=0, description="openai_batch: how long a run waits for a submitted batch "
                                "before leaving its records pending (exit 4); 0: look once")
    poll_seconds: float = Field(30.0, gt=0, description="between two looks while waiting")
    batch_discount: float = Field(0.5, ge=0, le=1, description="price factor of batch requests in the cost ledger "
                                  "(the Batch API charges half the price_per_1m fields)")
    batch_size: int = Field(128, ge=1, description="unused: requests are written to the file as the stage reads them")


LLMConfig = Annotated[TransformersLLMConfig | OpenAILLMConfig | VLLMConfig | BatchLLMConfig,
                      Field(discriminator="backend")]


def fit_prompt(ids: list[int], max_new_tokens: int, context: int | None, rule: str) -> tuple[list[int] | None, str | None]:
    """(token ids to send, None) or (None, error): a prompt that leaves no room for `max_new_tokens` in the context is
    cut by the declared rule or refused, never sent (HF would fail or degrade past its positions; vLLM raises)."""
    if context is None or len(ids) + max_new_tokens <= context:
        return ids, None
    budget = context - max_new_tokens
    why = f"{PROMPT_TOO_LONG}: {len(ids)} prompt tokens + {max_new_tokens} new tokens > context {context}"
    if rule == "quarantine" or budget < 1:
        return None, why
    return (ids[-budget:] if rule == "truncate_left" else ids[:budget]), None


def json_field(text: str | None, key: str) -> Any:
    """The value of `key` in an answer that is a JSON object (structured output), or None."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return None
    return value.get(key) if isinstance(value, dict) else None
