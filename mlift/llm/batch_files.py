"""Offline batch files: a stage's requests as OpenAI batch JSONL, run as one job, read back into the request cache.

The file format is the one the OpenAI Batch API and `vllm run-batch` share: one request per line,
`{"custom_id", "method": "POST", "url": "/v1/chat/completions" | "/v1/completions", "body": {...}}`, and one result per
line, `{"id", "custom_id", "response": {"status_code", "body"}, "error"}`. `custom_id` is the request's cache key, so
results go straight into the cache (mlift/llm/cache.py) whatever order they come back in.

`BatchJob` drives the OpenAI Batch API (upload the file, create the batch, poll, download the output); the batch id is
written beside the file before any polling, so a rerun resumes polling the same batch instead of paying again.
The `batch` LLM backend (mlift/llm/batch_backend.py) runs these steps for a stage: `write_requests`, a job
(`BatchJob` or `vllm run-batch -i requests.jsonl -o results.jsonl --model M`), `read_results` on a rerun.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mlift.llm.base import Completion, GenParams, Request, transient_error
from mlift.records import write_json_atomic

CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"


def request_line(custom_id: str, model: str, request: Request, params: GenParams) -> dict[str, Any]:
    """One line of a batch input file: the body the openai backend would send for this request."""
    body: dict[str, Any] = {"model": model, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                            "top_p": params.top_p, "seed": params.seed}
    if params.stop:
        body["stop"] = params.stop
    if request.messages is not None:
        body["messages"] = request.messages
        if params.json_schema:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": params.json_schema, "strict": True}}
    else:
        body["prompt"] = request.prompt
    return {"custom_id": custom_id, "method": "POST", "url": CHAT if request.messages is not None else COMPLETIONS,
            "body": body}


def write_requests(path: str | Path, lines: Iterable[dict[str, Any]]) -> int:
    """Write (atomically) the request lines, each custom_id once; returns the count. One file holds one endpoint (the
    Batch API's rule): chat and completion requests go to two files."""
    path = Path(path)
    seen: dict[str, dict[str, Any]] = {}
    for line in lines:
        seen.setdefault(line["custom_id"], line)
    urls = {line["url"] for line in seen.values()}
    if len(urls) > 1:
        raise ValueError(f"one batch file holds one endpoint, got {sorted(urls)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in seen.values()), encoding="utf-8")
    tmp.replace(path)
    return len(seen)


def read_results(path: str | Path) -> dict[str, Completion]:
    """custom_id -> Completion from a batch output file (OpenAI Batch API or `vllm run-batch`). A line with an error or
    a non-200 status is a failed completion (transient for 429/5xx, as the HTTP backend sees it)."""
    out: dict[str, Completion] = {}
    for n, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {n}: not JSON ({exc.msg})") from None
        resp, err = line.get("response") or {}, line.get("error")
        status = resp.get("status_code", 0)
        body = resp.get("body") or {}
        if err or status != 200 or not body.get("choices"):
            msg = f"batch request failed: status {status}: {json.dumps(err or body)[:300]}"
            out[line["custom_id"]] = Completion(text=None, error=transient_error(msg) if status == 429 or status >= 500
                                                else msg)
            continue
        choice = body["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice.get("text")
        usage = body.get("usage") or {}
        reason = choice.get("finish_reason")
        out[line["custom_id"]] = Completion(text=text, prompt_tokens=usage.get("prompt_tokens", 0) or 0,
                                            completion_tokens=usage.get("completion_tokens", 0) or 0,
                                            extra={"finish_reason": reason} if reason else {})
    return out


def batch_cost(results: dict[str, Completion], price_prompt: float, price_completion: float,
               discount: float = 0.5) -> float:
    """USD for the results at the batch price (the Batch API charges half the per-1M-token prices)."""
    prompt = sum(c.prompt_tokens for c in results.values())
    completion = sum(c.completion_tokens for c in results.values())
    return discount * (prompt * price_prompt + completion * price_completion) / 1e6


FINAL = ("completed", "failed", "expired", "cancelled")


class BatchJob:
    """One OpenAI Batch API job for one input file; its state (`<input>.batch.json`: batch id, file ids, status) is
    written as soon as the batch exists, so a rerun polls that batch again instead of creating (and paying for) another."""

    def __init__(self, client: Any, input_path: str | Path, completion_window: str = "24h"):
        self.client = client  # an openai.OpenAI client (its base_url: the API, or any server with /files and /batches)
        self.input = Path(input_path)
        self.state_path = self.input.with_name(self.input.name + ".batch.json")
        self.window = completion_window

    def state(self) -> dict[str, Any] | None:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else None

    def submit(self) -> str:
        """The batch id: the one recorded for this file, or a new batch (upload, create) recorded at once."""
        state = self.state()
        if state is not None:
            return state["batch_id"]
        endpoint = json.loads(self.input.open(encoding="utf-8").readline())["url"]
        with self.input.open("rb") as f:
            uploaded = self.client.files.create(file=f, purpose="batch")
        batch = self.client.batches.create(input_file_id=uploaded.id, endpoint=endpoint,
                                           completion_window=self.window)
        write_json_atomic(self.state_path, {"batch_id": batch.id, "input_file_id": uploaded.id, "endpoint": endpoint,
                                            "status": batch.status, "created_at": time.time()})
        return batch.id

    def wait(self, poll_s: float = 30.0, timeout_s: float | None = None,
             log: Callable[[str], None] = lambda msg: None) -> Any:
        """Poll until the batch is in a final state (or timeout_s passes: then its current state)."""
        batch_id = self.submit()
        start = time.monotonic()
        while True:
            batch = self.client.batches.retrieve(batch_id)
            state = self.state() or {}
            write_json_atomic(self.state_path, {**state, "status": batch.status,
                                                "output_file_id": getattr(batch, "output_file_id", None)})
            counts = getattr(batch, "request_counts", None)
            log(f"batch {batch_id}: {batch.status}" + (f" ({counts.completed}/{counts.total})" if counts else ""))
            if batch.status in FINAL or (timeout_s is not None and time.monotonic() - start >= timeout_s):
                return batch
            time.sleep(poll_s)

    def download(self, batch: Any, output_path: str | Path) -> Path:
        """The batch's output file (and its error file, appended: failed lines carry their error) to output_path."""
        output_path = Path(output_path)
        parts = [self.client.files.content(fid).text for fid in (batch.output_file_id, getattr(batch, "error_file_id", None))
                 if fid]
        tmp = output_path.with_name(f".{output_path.name}.tmp")
        tmp.write_text("".join(p if p.endswith("\n") or not p else p + "\n" for p in parts), encoding="utf-8")
        tmp.replace(output_path)
        return output_path
