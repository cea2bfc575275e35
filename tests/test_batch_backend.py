"""The `batch` LLM backend (mlift/llm/batch_backend.py) round-trips a stage of `mlift translate` through an offline
batch file: the first run writes the requests and exits 4, a rerun resumes (polls the same batch / finds the results
file) and completes the stage with the output of a direct run against a server answering by the same rule.

Stand-ins, because the real thing cannot run here: the hosted Batch API is the local server of test_batch_files.py
(the documented /v1/files and /v1/batches endpoints, through the real `openai` client); `vllm run-batch` needs a GPU
and vLLM, so the test writes its output file itself in vLLM's BatchRequestOutput format (vllm/entrypoints/openai/
protocol.py: {"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}), answering by rule.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from servers import LatencyServer
from test_batch_files import BatchServer

LINES = ["Bonjour tout le monde.", "Le chat dort sur le canapé.", "Il pleut depuis ce matin.",
         "Nous partons demain à l'aube.", "La bibliothèque ferme à vingt heures.", "Bonjour tout le monde."]


def rule(messages: list[dict]) -> str:
    """The answer both stand-ins give: what a model server would compute from the request."""
    return "answer to " + messages[-1]["content"]


def recipe(tmp_path: Path, name: str, llm: dict) -> Path:
    src = tmp_path / "fr.txt"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    data = {"seed": 0, "output_dir": str(tmp_path / name), "num_shards": 2, "batch_size": 2,
            "max_attempts": 2,  # waiting for a batch over several reruns must not quarantine anything
            "input": {"path": str(src), "lang": "fra_Latn"}, "target_langs": ["eng_Latn"],
            "translator": {"kind": "llm", "mode": "chat", "fewshot": 1, "max_new_tokens": 64,
                           "llm": {"model": "m", **llm}}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def translate(path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLIFT_CACHE_WRITER"}
    return subprocess.run([sys.executable, "-m", "mlift", "translate", str(path), "--no-progress"], env=env,
                          capture_output=True, text=True, timeout=120)


def shards(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("to_*/**/shard-*.jsonl"))}


@pytest.fixture(scope="module")
def direct(tmp_path_factory) -> dict[str, bytes]:
    """The same recipe through the openai backend, request by request, against a server answering by the rule (the
    records name the backend that made them: "llm:batch:m" in a batch run)."""
    tmp = tmp_path_factory.mktemp("direct")
    server = LatencyServer(answer=lambda body: rule(body["messages"]))
    try:
        done = translate(recipe(tmp, "direct", {"backend": "openai", "base_url": server.url + "/v1"}))
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    out = shards(tmp / "direct")
    assert len(out) == 2 and b"answer to " in out["to_en/shard-00000-of-00002.jsonl"]
    return {k: v.replace(b'"llm:openai:m"', b'"llm:batch:m"') for k, v in out.items()}


def test_batch_api_round_trip_and_rerun_resumes_polling(direct, tmp_path):
    server = BatchServer(complete_at=2)
    try:
        path = recipe(tmp_path, "run", {"backend": "batch", "runner": "openai_batch", "base_url": server.url,
                                        "price_per_1m_prompt": 2.0, "price_per_1m_completion": 4.0})
        first = translate(path)
        assert first.returncode == 4, first.stderr
        files = sorted((tmp_path / "run" / "llm_batch").glob("*.requests.jsonl"))
        assert [f.name for f in files] == ["main-0001-chat.requests.jsonl"]
        state = json.loads(files[0].with_name(files[0].name + ".batch.json").read_text())
        assert f"submitted as batch {state['batch_id']}" in first.stdout and server.creates == 1
        assert len(files[0].read_text().splitlines()) == 5  # the repeated line is one request

        second = translate(path)  # the stand-in says in_progress: the same batch is polled, none created
        assert second.returncode == 4, second.stderr
        assert server.creates == 1 and server.polls == 1 and "in_progress" in second.stdout

        third = translate(path)  # completed: the results are read into the cache, the stage completes
        assert third.returncode == 0, third.stderr
        assert server.creates == 1 and server.polls == 2
        assert shards(tmp_path / "run") == direct
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        stage = manifest["stages"]["to_en"]
        assert stage["counts"]["quarantine"] == 0 and stage["retries"]["final"] == 0
        usage = stage["usage"]["batch:m"]  # the batch price: half the price_per_1m fields
        assert usage["generated"] == 5 and usage["cost_usd"] == pytest.approx(0.5 * (usage["prompt_tokens"] * 2 + usage["completion_tokens"] * 4) / 1e6)

        fourth = translate(path)  # nothing left to do: no poll, no batch, the same output
        assert fourth.returncode == 0 and server.creates == 1 and server.polls == 2
        assert shards(tmp_path / "run") == direct
    finally:
        server.stop()


def run_batch(requests: Path, results: Path, fail: str | None = None) -> None:
    """What `vllm run-batch -i requests -o results` writes (vLLM cannot run here): one BatchRequestOutput per line."""
    out = []
    for k, raw in enumerate(requests.read_text(encoding="utf-8").splitlines()):
        line = json.loads(raw)
        body = line["body"]
        failed = fail is not None and fail in body["messages"][-1]["content"]
        response = {"status_code": 500, "request_id": f"vllm-batch-{k}",
                    "body": {"object": "error", "message": "engine died", "code": 500}} if failed else \
            {"status_code": 200, "request_id": f"vllm-batch-{k}",
             "body": {"id": f"chatcmpl-{k}", "object": "chat.completion", "created": 0, "model": body["model"],
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": rule(body["messages"])},
                                   "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}}
        out.append({"id": f"vllm-{k}", "custom_id": line["custom_id"], "response": response, "error": None})
    results.write_text("".join(json.dumps(x) + "\n" for x in out), encoding="utf-8")


def test_vllm_run_batch_file_round_trip(direct, tmp_path):
    path = recipe(tmp_path, "run", {"backend": "batch", "runner": "vllm_run_batch"})
    first = translate(path)
    assert first.returncode == 4, first.stderr
    batch_dir = tmp_path / "run" / "llm_batch"
    requests = batch_dir / "main-0001-chat.requests.jsonl"
    results = batch_dir / "main-0001-chat.results.jsonl"
    assert f"vllm run-batch -i {requests} -o {results} --model m" in first.stdout
    lines = [json.loads(x) for x in requests.read_text().splitlines()]
    # vLLM's BatchRequestInput: custom_id, method, url, body (a ChatCompletionRequest)
    assert len(lines) == 5 and len({x["custom_id"] for x in lines}) == 5
    for x in lines:
        assert set(x) == {"custom_id", "method", "url", "body"} and x["method"] == "POST"
        assert x["url"] == "/v1/chat/completions" and x["body"]["model"] == "m" and x["body"]["max_tokens"] == 64
        assert x["body"]["messages"][-1]["role"] == "user" and x["body"]["temperature"] == 0.0

    second = translate(path)  # the job has not run: still waiting, nothing written again
    assert second.returncode == 4 and sorted(p.name for p in batch_dir.iterdir()) == [requests.name]

    run_batch(requests, results, fail="canapé")  # one line fails in the job
    third = translate(path)
    assert third.returncode == 4, third.stderr  # that record is pending (one attempt counted), its request re-written
    again = batch_dir / "main-0002-chat.requests.jsonl"
    retry = [json.loads(x) for x in again.read_text().splitlines()]
    assert len(retry) == 1 and "canapé" in retry[0]["body"]["messages"][-1]["content"]
    run_batch(again, batch_dir / "main-0002-chat.results.jsonl")

    fourth = translate(path)
    assert fourth.returncode == 0, fourth.stderr
    assert shards(tmp_path / "run") == direct
    assert translate(path).returncode == 0 and shards(tmp_path / "run") == direct
    assert sorted(p.name for p in batch_dir.glob("*.requests.jsonl")) == [requests.name, again.name]


def test_vllm_run_batch_refuses_completion_requests(tmp_path):
    """`vllm run-batch` serves /v1/chat/completions only (its BatchRequestInput): a completion-mode stage is a setup
    error, said once, not a pending record per request."""
    path = recipe(tmp_path, "run", {"backend": "batch", "runner": "vllm_run_batch"})
    data = yaml.safe_load(path.read_text())
    data["translator"]["mode"] = "completion"
    path.write_text(yaml.safe_dump(data))
    done = translate(path)
    assert done.returncode == 2 and "chat/completions requests only" in done.stderr and "Traceback" not in done.stderr


def test_unreadable_results_file_is_a_clear_error(tmp_path):
    path = recipe(tmp_path, "run", {"backend": "batch", "runner": "vllm_run_batch"})
    assert translate(path).returncode == 4
    results = tmp_path / "run" / "llm_batch" / "main-0001-chat.results.jsonl"
    results.write_text('{"id": "x", "custom_id": "k", "response": {"status_code": 200, "body": {}}}\nnot json\n')
    done = translate(path)
    assert done.returncode == 2 and f"{results}: line 2: not JSON" in done.stderr and "Traceback" not in done.stderr
