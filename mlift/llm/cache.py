"""A per-request cache in sqlite: a rerun never pays twice for a finished generation, whatever the batch composition."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mlift.llm.base import Backend, Completion, GenParams, Request


def request_key(identity: dict[str, Any], params: dict[str, Any], request: dict[str, Any]) -> str:
    blob = json.dumps({"id": identity, "params": params, "request": request}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class RequestCache:
    """key -> completion, in one sqlite file (WAL: several processes of a Slurm array may share it on a local disk)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=120, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, text TEXT NOT NULL,"
            " prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)"
        )
        self._db.commit()

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows = self._db.execute(
                    f"SELECT key, text, prompt_tokens, completion_tokens FROM completions WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, text, pt, ct in rows:
                    found[key] = Completion(text=text, prompt_tokens=pt or 0, completion_tokens=ct or 0, cached=True)
        return found

    def put_many(self, items: list[tuple[str, Completion]]) -> None:
        rows = [(k, c.text, c.prompt_tokens, c.completion_tokens, time.time()) for k, c in items if c.ok]
        if not rows:
            return
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?)", rows)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._db.close()


class CachedLLM:
    """A backend behind the request cache, with token counters for the cost ledger.

    Only successful completions are cached, so a rerun retries the failures. `usage()` returns cumulative counters:
    requests, cache hits, failures, and the tokens actually paid for (fresh generations).
    """

    def __init__(self, backend: Backend, cache: RequestCache | None, default_params: GenParams | None = None,
                 seed: int = 0, batch_size: int = 16, prices: tuple[float, float] = (0.0, 0.0)):
        self.backend = backend
        self.cache = cache
        self.params = default_params or GenParams()
        self.seed = seed
        self.batch_size = batch_size
        self.prices = prices
        self.counters: Counter = Counter()

    @property
    def name(self) -> str:
        return f"{self.backend.backend}:{self.backend.model}"

    def prompt_mode(self, mode: str) -> str:
        """"chat" or "completion" for a recipe's mode; "auto": chat when the model has a chat template (an API
        backend, without a local tokenizer, is taken to be a chat model)."""
        if mode != "auto":
            return mode
        tok = getattr(self.backend, "tokenizer", None)
        return "chat" if tok is None or getattr(tok, "chat_template", None) else "completion"

    def resolve(self, params: GenParams | None) -> GenParams:
        params = params or self.params
        return params if params.seed is not None else params.model_copy(update={"seed": self.seed})

    def generate(self, requests: list[Request], params: GenParams | None = None) -> list[Completion]:
        params = self.resolve(params)
        if not requests:
            return []
        pdict = params.model_dump(mode="json")
        identity = self.backend.identity()
        keys = [request_key(identity, pdict, r.to_json()) for r in requests]
        hits = self.cache.get_many(list(dict.fromkeys(keys))) if self.cache is not None else {}
        todo = [i for i, k in enumerate(keys) if k not in hits]
        # Identical requests in one batch are generated once.
        unique: dict[str, int] = {}
        for i in todo:
            unique.setdefault(keys[i], i)
        fresh: dict[str, Completion] = {}
        order = list(unique.values())
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]

            def store(done: list[tuple[int, Completion]], chunk: list[int] = chunk) -> None:
                # Stored the moment they are finished: a killed run never pays for them again.
                if self.cache is not None:
                    self.cache.put_many([(keys[chunk[j]], out) for j, out in done])

            outs = self.backend.generate([requests[i] for i in chunk], params, on_done=store)
            if len(outs) != len(chunk):
                raise RuntimeError(f"{self.name} returned {len(outs)} completions for {len(chunk)} requests")
            for i, out in zip(chunk, outs):
                fresh[keys[i]] = out
                self.counters["prompt_tokens"] += out.prompt_tokens
                self.counters["completion_tokens"] += out.completion_tokens
                self.counters["failures"] += 0 if out.ok else 1
        self.counters["requests"] += len(requests)
        self.counters["cache_hits"] += len(requests) - len(todo)
        self.counters["generated"] += len(fresh)
        return [hits[k] if k in hits else fresh[k] for k in keys]

    def usage(self) -> dict[str, dict[str, float]]:
        c = dict(self.counters)
        c["cost_usd"] = (c.get("prompt_tokens", 0) * self.prices[0] + c.get("completion_tokens", 0) * self.prices[1]) / 1e6
        return {self.name: c}
