"""A per-request cache in sqlite: a rerun never pays twice for a finished generation, whatever the batch composition."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mlift.llm.base import Backend, Completion, GenParams, Request, transient_error
from mlift.llm.scheduler import LOOKAHEAD

MAX_WORKERS = 512  # threads of one stage's window, whatever the lookahead asks (each waits on its batch's requests)


def request_key(identity: dict[str, Any], params: dict[str, Any], request: dict[str, Any]) -> str:
    blob = json.dumps({"id": identity, "params": params, "request": request}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def key_params(params: GenParams) -> dict[str, Any]:
    """The params as they enter a request's key: json_schema only when set, so the keys of every other request stay
    as they were."""
    return params.model_dump(mode="json", exclude={"json_schema"} if params.json_schema is None else None)


def writer_id() -> str:
    """This process's cache file name: one per `--shard i/n` (mlift.cli sets MLIFT_CACHE_WRITER), so no two processes
    of a Slurm array ever write the same file."""
    raw = os.environ.get("MLIFT_CACHE_WRITER") or "main"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)


class RequestCache:
    """key -> completion, one sqlite file per writer under `<run_dir>/llm_cache/`: written only by its owner (rollback
    journal, no WAL: WAL needs shared memory, which network filesystems do not give), read by everyone.

    SQLite's locking is unreliable on NFS/Lustre, so no file is ever written by two processes (64 array tasks on 64
    nodes write 64 files), and a foreign file that cannot be read at the moment is a cache miss, never an error: at
    worst a generation is paid again. `RequestCache(<run_dir>/llm_cache.sqlite)` (the old single-file layout) means
    the directory beside it; an old single file there is still read.
    """

    def __init__(self, path: str | Path, writer: str | None = None):
        path = Path(path)
        # Finished completions not yet committed: readers see them at once; a writer thread commits them in groups
        # (one commit, one fsync, for whatever finished meanwhile), so no request waits on the disk.
        self._unwritten: dict[str, Completion] = {}
        self._queue: list[tuple[str, Completion]] = []
        self._wake = threading.Condition(threading.Lock())
        self._flusher: threading.Thread | None = None
        self._error: BaseException | None = None
        self._queued = 0  # rows queued since the start, and rows committed (or failed) of those
        self._done = 0
        self.legacy = path if path.suffix == ".sqlite" else None
        self.root = path.with_suffix("") if path.suffix == ".sqlite" else path
        self.path = self.root / f"{writer or writer_id()}.sqlite"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None  # opened on the first write: readers create nothing
        self._readers: dict[Path, sqlite3.Connection | None] = {}

    def _writer(self) -> sqlite3.Connection:
        if self._db is None:
            self.root.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=120, check_same_thread=False)
            db.execute("PRAGMA journal_mode=DELETE")
            db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the request counts as paid for
            db.execute(_SCHEMA)
            db.commit()
            self._db = db
        return self._db

    def _sources(self) -> list[tuple[Path, sqlite3.Connection]]:
        """Own file first, then every other writer's (found anew on each lookup: other tasks start late), then legacy."""
        found = []
        if self._db is None and self.path.is_file():
            # Our own file from an earlier run: opened read-write, which rolls back the hot journal a run killed
            # mid-commit leaves (a read-only connection cannot, and would fail every lookup).
            self._writer()
        if self._db is not None:
            found.append((self.path, self._db))
        others = sorted(p for p in self.root.glob("*.sqlite") if p != self.path) if self.root.is_dir() else []
        if self.legacy is not None and self.legacy.is_file():
            others.append(self.legacy)
        for p in others:
            if p not in self._readers:
                try:
                    self._readers[p] = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=30, check_same_thread=False)
                except sqlite3.Error:
                    continue  # not readable now: try again on the next lookup
            db = self._readers[p]
            if db is not None:
                found.append((p, db))
        return found

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        with self._wake:  # not committed yet (looked at first: a row leaves it only once committed)
            for k in keys:
                if k in self._unwritten:
                    found[k] = self._unwritten[k]
        with self._lock:
            for path, db in self._sources():
                todo = [k for k in keys if k not in found]
                if not todo:
                    break
                try:
                    for start in range(0, len(todo), 500):
                        chunk = todo[start:start + 500]
                        rows = db.execute(
                            "SELECT key, text, prompt_tokens, completion_tokens FROM completions"
                            f" WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                        for key, text, pt, ct in rows:
                            found[key] = Completion(text=text, prompt_tokens=pt or 0, completion_tokens=ct or 0,
                                                    cached=True)
                except sqlite3.Error:
                    if path != self.path:  # another writer's file mid-write or not yet created: a miss
                        self._readers.pop(path, None)
                        continue
                    raise
        return found

    def put_many(self, items: list[tuple[str, Completion]]) -> None:
        """Store finished completions (failures are not cached), on disk when this returns."""
        self.put_later(items)
        self.flush()

    def put_later(self, items: list[tuple[str, Completion]]) -> None:
        """Queue finished completions for the writer thread (failures are not cached); `flush` waits for the disk."""
        rows = [(k, Completion(text=c.text, prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                               cached=True)) for k, c in items if c.ok]
        if not rows:
            return
        # Not the sqlite lock: this runs on the HTTP backend's event loop, which must never wait for a commit's fsync.
        with self._wake:
            self._unwritten.update(rows)
            self._queue.extend(rows)
            self._queued += len(rows)
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._write_loop, daemon=True, name="mlift-cache-writer")
                self._flusher.start()
            self._wake.notify_all()

    def _write_loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                batch, self._queue = self._queue, []
            try:
                with self._lock:
                    db = self._writer()
                    db.executemany("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?)",
                                   [(k, c.text, c.prompt_tokens, c.completion_tokens, time.time()) for k, c in batch])
                    db.commit()
            except BaseException as exc:  # raised by the next flush, in the stage's thread
                self._error = exc
            with self._wake:
                for k, _ in batch:
                    if self._error is None:
                        self._unwritten.pop(k, None)
                self._done += len(batch)
                self._wake.notify_all()

    def flush(self) -> None:
        """Wait until everything queued so far is committed to disk."""
        with self._wake:
            target = self._queued
            while self._done < target:
                self._wake.wait()
        if self._error is not None:
            raise self._error

    def keys(self) -> set[str]:
        """Every key in every writer's file (for tests and merges)."""
        self.flush()
        out: set[str] = set()
        with self._lock:
            for _, db in self._sources():
                try:
                    out.update(k for (k,) in db.execute("SELECT key FROM completions"))
                except sqlite3.Error:
                    continue
        return out

    def __len__(self) -> int:
        return len(self.keys())

    def merge_into(self, target: str | Path) -> int:
        """Copy every writer's entries into one file (after the array job, e.g. to ship the cache); returns the count."""
        self.flush()
        out = sqlite3.connect(target)
        out.execute(_SCHEMA)
        n = 0
        with self._lock:
            for _, db in self._sources():
                rows = db.execute("SELECT key, text, prompt_tokens, completion_tokens, created FROM completions").fetchall()
                out.executemany("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?)", rows)
                n += len(rows)
        out.commit()
        out.close()
        return n

    def close(self) -> None:
        self.flush()
        for db in [self._db, *self._readers.values()]:
            if db is not None:
                db.close()
        self._db, self._readers = None, {}


_SCHEMA = ("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, text TEXT NOT NULL,"
           " prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)")


class CachedLLM:
    """A backend behind the request cache, with token counters for the cost ledger.

    Thread-safe: the runner calls `generate` from several threads at once for a backend that is `concurrent` (see
    mlift/llm/scheduler.py). A request already in flight in another thread is waited for, not sent twice. Only
    successful completions are cached, each as it finishes, so a rerun retries the failures and a kill loses only what
    was in flight. `usage()` returns cumulative counters: requests, cache hits, failures, and the tokens actually paid
    for (fresh generations).
    """

    def __init__(self, backend: Backend, cache: RequestCache | None, default_params: GenParams | None = None,
                 seed: int = 0, batch_size: int = 16, prices: tuple[float, float] = (0.0, 0.0),
                 lookahead: int | None = None):
        self.backend = backend
        self.cache = cache
        self.params = default_params or GenParams()
        self.seed = seed
        self.batch_size = batch_size
        self.prices = prices
        self.lookahead = lookahead
        self.counters: Counter = Counter()
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}

    @property
    def name(self) -> str:
        return f"{self.backend.backend}:{self.backend.model}"

    def parallel_batches(self, batch_size: int) -> int:
        """Stage batches of `batch_size` records to keep in flight at once (the runner's window): enough records to
        keep the backend's window full through a slow request (`lookahead`, default LOOKAHEAD x the window), or 1 for a
        backend that runs one call at a time (local, compute-bound)."""
        if not getattr(self.backend, "concurrent", False):
            return 1
        records = self.lookahead or LOOKAHEAD * max(1, int(getattr(self.backend, "window", 1)))
        return max(1, min(MAX_WORKERS, -(-records // max(1, batch_size))))

    def prompt_mode(self, mode: str) -> str:
        """"chat" or "completion" for a recipe's mode; "auto": chat when the model has a chat template (an API
        backend, without a local tokenizer, is taken to be a chat model)."""
        if mode != "auto":
            return mode
        tok = getattr(self.backend, "tokenizer", None)
        return "chat" if tok is None or getattr(tok, "chat_template", None) else "completion"

    def structured(self, mode: str) -> bool:
        """Whether the backend enforces `GenParams.json_schema` for requests of this mode ("chat"/"completion")."""
        fn = getattr(self.backend, "structured", None)
        return bool(fn(mode)) if fn else False

    def resolve(self, params: GenParams | None) -> GenParams:
        params = params or self.params
        return params if params.seed is not None else params.model_copy(update={"seed": self.seed})

    def _count(self, **kv: int) -> None:
        with self._lock:
            self.counters.update(kv)

    def generate(self, requests: list[Request], params: GenParams | None = None) -> list[Completion]:
        params = self.resolve(params)
        if not requests:
            return []
        pdict = key_params(params)
        identity = self.backend.identity()
        keys = [request_key(identity, pdict, r.to_json()) for r in requests]
        # Claim each key first, then look it up: a request another thread is generating is waited for, and one it has
        # just finished is in the cache (stored before the claim is released), so no request is ever sent twice.
        mine: dict[str, int] = {}
        theirs: dict[str, Future] = {}
        with self._lock:
            for i, k in enumerate(keys):
                if k in mine or k in theirs:
                    continue
                if k in self._inflight:
                    theirs[k] = self._inflight[k]
                else:
                    mine[k] = i
                    self._inflight[k] = Future()
        try:
            hits = self.cache.get_many(list(mine)) if self.cache is not None and mine else {}
            order = [i for k, i in mine.items() if k not in hits]
            fresh = self._fresh(requests, keys, order, params)
        except BaseException as exc:
            self._release(mine, {}, exc)
            raise
        self._release(mine, {**hits, **fresh})
        got = {**hits, **fresh}
        for k, fut in theirs.items():
            got[k] = fut.result()
        failures = sum(0 if out.ok else 1 for out in fresh.values())
        self._count(requests=len(requests), cache_hits=len(requests) - len(order), generated=len(fresh),
                    failures=failures, prompt_tokens=sum(o.prompt_tokens for o in fresh.values()),
                    completion_tokens=sum(o.completion_tokens for o in fresh.values()))
        return [got[k] for k in keys]

    def _release(self, mine: dict[str, int], outs: dict[str, Completion], exc: BaseException | None = None) -> None:
        with self._lock:
            for k in mine:
                fut = self._inflight.pop(k)
                if k in outs:
                    fut.set_result(outs[k])
                else:
                    fut.set_exception(exc or RuntimeError("request abandoned"))

    def _fresh(self, requests: list[Request], keys: list[str], order: list[int], params: GenParams) -> dict[str, Completion]:
        """Generate the requests at `order`, storing each in the cache the moment it is finished."""
        fresh: dict[str, Completion] = {}
        if not order:
            return fresh
        # A concurrent backend takes them all: it bounds what is in flight itself (no barrier every batch_size).
        step = len(order) if getattr(self.backend, "concurrent", False) else self.batch_size
        for start in range(0, len(order), step):
            chunk = order[start:start + step]

            def store(done: list[tuple[int, Completion]], chunk: list[int] = chunk) -> None:
                # Stored the moment they are finished: a killed run never pays for them again.
                if self.cache is not None:
                    self.cache.put_later([(keys[chunk[j]], out) for j, out in done])

            outs = self._isolating([requests[i] for i in chunk], params, store)
            fresh.update((keys[i], out) for i, out in zip(chunk, outs))
        if self.cache is not None:
            self.cache.flush()
        return fresh

    def _isolating(self, requests: list[Request], params: GenParams, store, offset: int = 0) -> list[Completion]:
        """backend.generate; if it raises, the batch is retried in halves down to the one request that raises, which
        gets the exception as its (transient) error, so one bad record never takes its batch or shard down."""
        from mlift.recipe import RecipeError

        def shifted(done: list[tuple[int, Completion]]) -> None:
            store([(offset + j, out) for j, out in done])

        try:
            outs = self.backend.generate(requests, params, on_done=shifted)
        except (RecipeError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:
            if len(requests) == 1:
                self._count(isolated=1)
                return [Completion(text=None, error=transient_error(f"{type(exc).__name__} in {self.name}: "
                                                                    f"{str(exc)[:300]}"))]
            half = len(requests) // 2
            return (self._isolating(requests[:half], params, store, offset)
                    + self._isolating(requests[half:], params, store, offset + half))
        if len(outs) != len(requests):
            raise RuntimeError(f"{self.name} returned {len(outs)} completions for {len(requests)} requests")
        return outs

    def usage(self) -> dict[str, dict[str, float]]:
        with self._lock:
            c = dict(self.counters)
        c["cost_usd"] = (c.get("prompt_tokens", 0) * self.prices[0] + c.get("completion_tokens", 0) * self.prices[1]) / 1e6
        return {self.name: c}
