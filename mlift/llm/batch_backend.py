"""The `batch` LLM backend: a stage's requests go to an offline batch file instead of a server.

A run answers from the cache what it can; every other request is written to `<run_dir>/llm_batch/` as OpenAI batch
JSONL (custom_id = the request's cache key, mlift/llm/batch_files.py) and its record stays pending (exit 4). At the
end of the stage the file is submitted (`runner: openai_batch`: upload + create, the batch id kept beside the file) or
left for `vllm run-batch -i <file> -o <results>` (`runner: vllm_run_batch`, e.g. a Slurm job). A rerun looks at each
file once: it polls its batch (downloading the output once completed) or finds the results file, and serves every
answered request from it, so the stage completes with what a direct run would have written.

Rules for pending records (mlift/runner/pending.py): a request waiting for its batch counts no attempt (`waiting_error`), so
a batch that takes ten reruns to finish quarantines nothing; a line that came back failed (or is missing: a batch that failed, expired or was cancelled) counts one attempt and
is written to the next file, so a request that never succeeds is quarantined after max_attempts.

Files of one process (`--shard i/n` gives each its own writer name, as for the cache), per round (one per stage and
run that had new requests) and endpoint: `<writer>-<round>-<chat|completions>.requests.jsonl`, its state
`....requests.jsonl.batch.json` (openai_batch) and its results `<writer>-<round>-<endpoint>.results.jsonl`.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from mlift.llm.base import BatchLLMConfig, Completion, GenParams, OnDone, Request, transient_error, waiting_error
from mlift.llm.batch_files import CHAT, FINAL, BatchJob, read_results, request_line, write_requests
from mlift.llm.cache import key_params, request_key, writer_id
from mlift.recipe import RecipeError

_OPEN: weakref.WeakSet[BatchBackend] = weakref.WeakSet()  # backends of this process, submitted at each stage's end


def results_path(requests_path: Path) -> Path:
    """Where the results of a requests file are read from (and where `vllm run-batch -o` must write them)."""
    return requests_path.with_name(requests_path.name.replace(".requests.jsonl", ".results.jsonl"))


def submit_batches() -> list[str]:
    """Write (and, for the Batch API, submit) the requests every batch backend collected; one message per file."""
    notes: list[str] = []
    for backend in list(_OPEN):
        notes += backend.submit()
    return notes


class BatchBackend:
    backend = "batch"
    concurrent = False  # a call only writes lines or reads answers: one at a time is as fast as the reader
    window = 1

    def __init__(self, cfg: BatchLLMConfig, directory: str | Path):
        self.cfg = cfg
        self.model = cfg.model
        self.dir = Path(directory)
        self.writer = writer_id()
        self._lock = threading.Lock()
        self._looked = False
        self._results: dict[str, Completion] = {}  # key -> the answer of the latest file holding it
        self._waiting: dict[str, Path] = {}  # key -> the file whose answers are not there yet
        self._queued: dict[str, dict[str, Any]] = {}  # key -> request line, for this stage's new file
        self._client = None
        _OPEN.add(self)

    def identity(self) -> dict[str, Any]:
        # The same request through the OpenAI protocol, sent alone or in a batch: the same key, so a cache filled by
        # a direct run (the openai backend) serves a batch run and the other way round.
        return {"backend": "openai", "model": self.model}

    def structured(self, mode: str) -> bool:
        return mode == "chat"  # the request line carries response_format, as the openai backend's request does

    def generate(self, requests: list[Request], params: GenParams, on_done: OnDone | None = None) -> list[Completion]:
        if self.cfg.runner == "vllm_run_batch" and any(r.messages is None for r in requests):
            raise RecipeError(f"backend batch, runner vllm_run_batch: `vllm run-batch` takes {CHAT} requests only; "
                              "use chat prompts (e.g. the translator's `mode: chat`)")
        pdict = key_params(params)
        outs: list[Completion] = []
        with self._lock:
            if not self._looked:
                self._look()
                self._looked = True
            for req in requests:
                key = request_key(self.identity(), pdict, req.to_json())
                done = self._results.get(key)
                if done is not None:
                    if done.transient:  # failed in its batch: counts one attempt, and goes into the next file
                        self._queued.setdefault(key, request_line(key, self.model, req, params))
                    outs.append(done)
                elif key in self._waiting:
                    outs.append(Completion(text=None, error=waiting_error(f"in batch file {self._waiting[key]}")))
                else:
                    self._queued.setdefault(key, request_line(key, self.model, req, params))
                    outs.append(Completion(text=None, error=waiting_error(f"written to a batch file in {self.dir}")))
        if on_done:
            on_done(list(enumerate(outs)))
        return outs

    def _files(self) -> list[Path]:
        return sorted(self.dir.glob(f"{self.writer}-*.requests.jsonl")) if self.dir.is_dir() else []

    def _look(self) -> None:
        """Once per run, before the first request: every earlier file's answers (or that it is still running)."""
        for path in self._files():
            keys = [json.loads(x)["custom_id"] for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
            out = results_path(path)
            if not out.exists() and self.cfg.runner == "openai_batch":
                self._fetch(path, out)
            if out.exists():
                try:
                    got = read_results(out)
                except (ValueError, KeyError) as exc:
                    raise RecipeError(f"batch results {out}: {exc}") from None
                for k in keys:  # a line missing (an expired or failed batch) is a failed request: one attempt
                    self._results[k] = got.get(k) or Completion(text=None, error=transient_error(f"no line for this "
                                                                                                 f"request in {out}"))
                    self._waiting.pop(k, None)
            else:
                for k in keys:
                    self._results.pop(k, None)
                    self._waiting[k] = path

    def _openai(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            key = os.environ.get(self.cfg.api_key_env)
            if not key and self.cfg.base_url is None:
                raise RecipeError(f"the OpenAI Batch API needs a key: set the environment variable {self.cfg.api_key_env}")
            self._client = OpenAI(base_url=self.cfg.base_url, api_key=key or "EMPTY")
        return self._client

    def _fetch(self, path: Path, out: Path) -> None:
        """Submit the file if an earlier run could not, look at its batch (waiting up to wait_seconds), download the
        output once completed."""
        job = BatchJob(self._openai(), path, self.cfg.completion_window)
        try:
            batch = job.wait(self.cfg.poll_seconds, timeout_s=self.cfg.wait_seconds,
                             log=lambda msg: print(f"{path.name}: {msg}", flush=True))
            if batch.status in FINAL:  # completed, or failed/expired/cancelled with what it answered (maybe nothing)
                job.download(batch, out)
                if batch.status != "completed":
                    print(f"{path.name}: batch {batch.id} {batch.status} ({batch.errors}); its unanswered requests "
                          "count one attempt and go into the next file")
        except RecipeError:
            raise
        except Exception as exc:  # the API unreachable now: the file's records wait for the next run
            print(f"{path.name}: cannot reach the batch API ({type(exc).__name__}: {str(exc)[:200]}); rerun later")

    def submit(self) -> list[str]:
        """This stage's new requests into the next round's file(s), submitted (openai_batch) or left for vllm."""
        with self._lock:
            if not self._queued:
                return []
            rounds = [int(p.name[len(self.writer) + 1:].split("-")[0]) for p in self._files()]
            n = max(rounds, default=0) + 1
            notes = []
            for url in sorted({line["url"] for line in self._queued.values()}):
                lines = [line for line in self._queued.values() if line["url"] == url]
                path = self.dir / f"{self.writer}-{n:04d}-{'chat' if url == CHAT else 'completions'}.requests.jsonl"
                count = write_requests(path, lines)
                for line in lines:
                    self._waiting[line["custom_id"]] = path
                    self._results.pop(line["custom_id"], None)
                notes.append(self._start(path, count))
            self._queued.clear()
            return notes

    def _start(self, path: Path, count: int) -> str:
        if self.cfg.runner == "vllm_run_batch":
            return (f"{count} requests written to {path}; run `vllm run-batch -i {path} -o {results_path(path)} "
                    f"--model {self.model}` (e.g. as a Slurm job), then rerun")
        try:
            batch_id = BatchJob(self._openai(), path, self.cfg.completion_window).submit()
        except RecipeError:
            raise
        except Exception as exc:  # the next run submits it (the file has no batch id yet)
            return (f"{count} requests written to {path}; submitting failed ({type(exc).__name__}: "
                    f"{str(exc)[:200]}), the next run submits it")
        return f"{count} requests written to {path}; submitted as batch {batch_id}; rerun to collect the results"
