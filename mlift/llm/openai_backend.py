"""OpenAI-compatible HTTP backend (vLLM server, TGI, SGLang, `transformers serve`, hosted APIs).

One event loop on a daemon thread, one client and one semaphore per backend: `generate` may be called from many
threads at once (the runner's streaming window, mlift/llm/scheduler.py) and the semaphore keeps exactly `concurrency`
requests in flight across all of them, first come first served, with no barrier between batches. Timeouts, 429s, 5xx and dropped connections are retried with exponential backoff
by the openai client itself (max_retries); a request that still fails becomes a Completion with `error`, so its record
goes to quarantine and the run goes on. Such an error is marked transient (connection, timeout, 429, 5xx): the record
stays pending and the next run retries it; other statuses (400, 401, 404) are final. The key comes from an environment
variable only, and is cut out of every error text (a 401 body may echo it) before the text goes anywhere.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from typing import Any

from mlift.llm.base import PROMPT_TOO_LONG, Completion, GenParams, OnDone, OpenAILLMConfig, Request, transient_error
from mlift.llm.scheduler import IN_FLIGHT
from mlift.recipe import RecipeError

_BEARER = re.compile(r"(?i)(bearer\s+|api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+")
_TOO_LONG = re.compile(r"(?i)maximum context length|context length|too many tokens|prompt is too long")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """The text without the given secrets and without anything that looks like a bearer token or an api_key value."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _BEARER.sub(lambda m: m.group(1) + "***", text)


def describe_failure(exc: Exception, secrets: tuple[str, ...] = ()) -> str:
    """The error text of a request that failed after the client's retries, with its category (see mlift.llm.base)."""
    import openai

    msg = redact(f"{type(exc).__name__}: {str(exc)[:300]}", secrets)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.APIStatusError) and status is not None and status < 500 and status not in (408, 409, 429):
        return f"{PROMPT_TOO_LONG}: {msg}" if status in (400, 413, 422) and _TOO_LONG.search(msg) else msg
    return transient_error(msg)  # connection, timeout, 408/409/429, 5xx, or anything else the client raised


class MissingKeyError(RecipeError, RuntimeError):
    """A setup error, not a record's: the run stops with a message (exit 2) instead of retrying every request."""


class OpenAIBackend:
    backend = "openai"
    concurrent = True  # generate() may be called from several threads; the semaphore bounds what is in flight

    def structured(self, mode: str) -> bool:
        """Whether `GenParams.json_schema` is enforced: chat requests carry it as `response_format` (OpenAI, vLLM,
        SGLang and TGI servers honour it); the completions endpoint has no such field."""
        return mode == "chat"

    def __init__(self, cfg: OpenAILLMConfig):
        self.cfg = cfg
        self.model = cfg.model
        self.base_url = cfg.base_url
        self.window = cfg.concurrency
        self._start = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = None
        self._sem: asyncio.Semaphore | None = None

    def identity(self) -> dict[str, Any]:
        # The server's address is not part of the identity: the same model served elsewhere gives the same answers.
        return {"backend": self.backend, "model": self.model}

    def _api_key(self) -> str:
        key = os.environ.get(self.cfg.api_key_env)
        if key:
            return key
        if self.base_url is None:
            raise MissingKeyError(f"the OpenAI API needs a key: set the environment variable {self.cfg.api_key_env}")
        return "EMPTY"  # local servers accept any key

    def _started(self) -> asyncio.AbstractEventLoop:
        """The backend's event loop (a daemon thread, so a killed run never waits for it), started on first use."""
        with self._start:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, daemon=True, name="mlift-openai").start()
                self._loop = loop
            return self._loop

    def generate(self, requests: list[Request], params: GenParams, on_done: OnDone | None = None) -> list[Completion]:
        key = self._api_key()  # a missing key stops the run here, before any request
        loop = self._started()
        return asyncio.run_coroutine_threadsafe(self._generate(requests, params, on_done, key), loop).result()

    async def _generate(self, requests: list[Request], params: GenParams, on_done: OnDone | None,
                        key: str) -> list[Completion]:
        if self._client is None:  # created on the loop's thread: httpx binds its pool to the running loop
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(base_url=self.base_url, api_key=key, timeout=self.cfg.timeout_s,
                                       max_retries=self.cfg.max_retries)
            self._sem = asyncio.Semaphore(self.cfg.concurrency)
        client, sem = self._client, self._sem

        async def one(i: int, req: Request) -> Completion:
            async with sem:
                IN_FLIGHT.add(1)
                try:
                    out = await self._call(client, req, params)
                except Exception as exc:  # after the client's own retries
                    out = Completion(text=None, error=describe_failure(exc, (key,)))
                finally:
                    IN_FLIGHT.add(-1)
            if on_done:
                on_done([(i, out)])
            return out

        return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(requests))))

    async def _call(self, client, req: Request, params: GenParams) -> Completion:
        common: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        }
        if params.stop:
            common["stop"] = params.stop
        if req.messages is not None:
            if params.json_schema:
                common["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "answer", "schema": params.json_schema, "strict": True}}
            resp = await client.chat.completions.create(messages=req.messages, **common)
            text = resp.choices[0].message.content if resp.choices else None
        else:
            resp = await client.completions.create(prompt=req.prompt, **common)
            text = resp.choices[0].text if resp.choices else None
        if text is None:
            return Completion(text=None, error="empty response (no choices)")
        usage = resp.usage
        reason = getattr(resp.choices[0], "finish_reason", None)  # "length": cut at max_tokens
        return Completion(text=text, prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                          completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                          extra={"finish_reason": reason} if reason else {})
