"""Offline batch files (mlift/llm/batch_files.py): requests written as OpenAI batch JSONL with custom_id = the cache key,
run as one job through the Batch API client, read back into the request cache; a rerun resumes polling the same batch.

The hosted Batch API cannot be reached from here: the client (the real `openai` package) talks to a local stand-in
that implements the documented endpoints (POST /v1/files, POST /v1/batches, GET /v1/batches/{id},
GET /v1/files/{id}/content) and answers each line as a model server would. `vllm run-batch` reads and writes the same
line format; vLLM itself needs a GPU and is not run here.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from mlift.llm import GenParams, OpenAILLMConfig, Request, RequestCache, make_llm
from mlift.llm.batch_files import BatchJob, batch_cost, read_results, request_line, write_requests
from mlift.llm.cache import request_key


class BatchServer:
    """The documented files/batches endpoints, in memory; a batch is in progress until its `complete_at`-th poll,
    which completes it by answering each line by rule ("answer to <last message>"; a 500 for a text holding FAIL)."""

    def __init__(self, complete_at: int = 3):
        self.complete_at = complete_at
        self.polls = 0
        from aiohttp import web

        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.creates = 0
        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/files", self.upload)
        app.router.add_post("/v1/batches", self.create)
        app.router.add_get("/v1/batches/{id}", self.retrieve)
        app.router.add_get("/v1/files/{id}/content", self.content)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def upload(self, request):
        from aiohttp import web

        form = await request.post()
        assert form["purpose"] == "batch"
        fid = f"file-{len(self.files)}"
        self.files[fid] = form["file"].file.read()
        return web.json_response({"id": fid, "object": "file", "bytes": len(self.files[fid]), "created_at": 0,
                                  "filename": form["file"].filename, "purpose": "batch", "status": "processed"})

    async def create(self, request):
        from aiohttp import web

        body = await request.json()
        self.creates += 1
        bid = f"batch_{len(self.batches)}"
        self.batches[bid] = {"id": bid, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                             "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                             "status": "validating", "created_at": 0, "polls": 0, "output_file_id": None,
                             "error_file_id": None, "request_counts": {"total": 0, "completed": 0, "failed": 0}}
        return web.json_response({k: v for k, v in self.batches[bid].items() if k != "polls"})

    async def retrieve(self, request):
        from aiohttp import web

        b = self.batches[request.match_info["id"]]
        b["polls"] += 1
        self.polls += 1
        if b["polls"] < self.complete_at:
            b["status"] = "in_progress"
        elif b["status"] != "completed":
            lines = [json.loads(x) for x in self.files[b["input_file_id"]].decode().splitlines()]
            out = []
            for k, line in enumerate(lines):
                text = line["body"]["messages"][-1]["content"]
                body = {"id": f"c{k}", "object": "chat.completion", "model": line["body"]["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer to {text}"},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}}
                status = 500 if "FAIL" in text else 200
                out.append({"id": f"r{k}", "custom_id": line["custom_id"], "error": None,
                            "response": {"status_code": status, "request_id": f"q{k}",
                                         "body": body if status == 200 else {"error": {"message": "server error"}}}})
            fid = f"file-{len(self.files)}"
            self.files[fid] = "".join(json.dumps(x) + "\n" for x in out).encode()
            b.update(status="completed", output_file_id=fid,
                     request_counts={"total": len(out), "completed": len(out), "failed": 0})
        return web.json_response({k: v for k, v in b.items() if k != "polls"})

    async def content(self, request):
        from aiohttp import web

        return web.Response(body=self.files[request.match_info["id"]], content_type="application/jsonl")

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture()
def server():
    srv = BatchServer()
    yield srv
    srv.stop()


def stage_requests(n: int):
    reqs = [Request(messages=[{"role": "user", "content": f"Translate sentence {i}."}]) for i in range(n)]
    reqs.append(Request(messages=[{"role": "user", "content": "FAIL on purpose"}]))
    return reqs


def test_round_trip_into_the_cache_and_a_rerun_resumes_polling(server, tmp_path):
    from openai import OpenAI

    cfg = OpenAILLMConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1")  # nothing listens there
    llm = make_llm(cfg, tmp_path)
    params = llm.resolve(GenParams(max_new_tokens=8))
    reqs = stage_requests(5)
    ident = llm.backend.identity()
    keys = [request_key(ident, params.model_dump(mode="json", exclude={"json_schema"}), r.to_json()) for r in reqs]
    path = tmp_path / "batch" / "requests.jsonl"
    assert write_requests(path, [request_line(k, "m", r, params) for k, r in zip(keys, reqs)] * 2) == 6  # once each

    client = OpenAI(base_url=server.url, api_key="x")
    first = BatchJob(client, path)
    batch_id = first.submit()  # ... and the run is killed here, before polling
    again = BatchJob(client, path)  # the rerun
    batch = again.wait(poll_s=0.01)
    assert again.submit() == batch_id and server.creates == 1 and batch.status == "completed"
    results = read_results(again.download(batch, tmp_path / "batch" / "results.jsonl"))
    assert set(results) == set(keys)
    assert not results[keys[-1]].ok and results[keys[-1]].transient  # the 500 line: retried by a later run
    llm.cache.put_many(list(results.items()))
    assert round(batch_cost(results, 1.0, 2.0), 8) == round(0.5 * (5 * 10 * 1.0 + 5 * 4 * 2.0) / 1e6, 8)

    # The stage's requests are now cache hits: the server the recipe names is never contacted for them.
    outs = make_llm(cfg, tmp_path).generate(reqs[:5], GenParams(max_new_tokens=8))
    assert all(o.cached for o in outs) and outs[2].text == "answer to Translate sentence 2."
    assert len(RequestCache(tmp_path / "llm_cache.sqlite", writer="other")) == 5


def test_one_file_holds_one_endpoint(tmp_path):
    params = GenParams(max_new_tokens=4, seed=0)
    lines = [request_line("a", "m", Request(prompt="x"), params),
             request_line("b", "m", Request(messages=[{"role": "user", "content": "y"}]), params)]
    assert lines[0]["url"] == "/v1/completions" and lines[1]["url"] == "/v1/chat/completions"
    with pytest.raises(ValueError, match="one endpoint"):
        write_requests(tmp_path / "r.jsonl", lines)
