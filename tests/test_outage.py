"""Fault injection at the scale of a run: `mlift generate` (the udhr_stories260k recipe, every LLM stage through the
openai backend against `transformers serve` of the 260K Llama) with the server gone for a window in the middle: every
request in it fails (500s and dropped connections). The run ends with exit 4 and pending records; the same command run
twice more completes it, and the final dataset equals an uninterrupted run's byte for byte, with the retried records
in the funnel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from conftest import REPO, shared_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served_stories(tmp_path_factory):
    from servers import FaultProxy, ModelServer

    server = ModelServer(shared_path("models", "stories260K"), tmp_path_factory.mktemp("serve") / "serve.log")
    proxy = FaultProxy(server.url)
    yield server, proxy
    proxy.stop()
    server.stop()


def recipe(tmp_path: Path, name: str, served) -> Path:
    server, proxy = served
    data = yaml.safe_load((REPO / "recipes/generate/udhr_stories260k.yaml").read_text())
    llm = {"backend": "openai", "model": server.model, "base_url": proxy.url + "/v1", "max_retries": 0,
           "timeout_s": 60, "concurrency": 4, "batch_size": 16}
    data["output_dir"] = str(tmp_path / name)
    data["languages"] = ["fra_Latn", "spa_Latn"]
    for src in data["sources"]:
        src["path"] = src["path"].replace("../shared", str(shared_path()))
    data["sources"][0]["limit"] = 16
    data["translator"]["llm"] = dict(llm)
    data["instruct"]["llm"] = {**llm, "price_per_1m_prompt": 0.1, "price_per_1m_completion": 0.2}
    data["instruct"]["mode"] = "completion"  # the 260K Llama has no chat template
    data["score"]["mode"] = "completion"
    data["report"] = {"enabled": False}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def generate(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("WANDB_PROJECT", None)
    return subprocess.run([sys.executable, "-m", "mlift", "generate", str(path), "--no-progress"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)


def final_data(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/to_target/shard-*.jsonl"))}


class Outage:
    """Requests number `start` .. `start + width - 1` (counted over all requests) fail: a 500, or a dropped connection."""

    def __init__(self, start: int, width: int):
        self.start, self.width, self.seen, self.failed = start, width, 0, 0
        self.lock = threading.Lock()

    def __call__(self, body: str, attempt: int) -> str:
        with self.lock:
            self.seen += 1
            if self.start <= self.seen < self.start + self.width:
                self.failed += 1
                return "500" if self.seen % 2 else "drop"
        return "ok"


def test_server_outage_loses_nothing_after_reruns(served_stories, tmp_path):
    _, proxy = served_stories
    proxy.reset()
    clean = generate(recipe(tmp_path, "clean", served_stories))
    assert clean.returncode == 0, clean.stderr[-3000:]
    total = sum(proxy.attempts.values())
    expected = final_data(tmp_path / "clean")
    assert expected and sum(len(v.splitlines()) for v in expected.values()) > 4

    outage = Outage(start=total // 3, width=total // 4)
    proxy.reset(outage)
    path = recipe(tmp_path, "outage", served_stories)
    first = generate(path)
    # The window really fell inside the run (it may end early: a language stops at the step with pending records).
    assert outage.failed >= 5
    assert first.returncode == 4, first.stderr[-3000:]
    assert "pending after transient failures" in first.stderr and "rerun" in first.stderr
    out = tmp_path / "outage"
    assert not (out / "manifest.json").exists()  # not complete, and not claimed to be
    assert list(out.glob("*/*/_pending/*.json"))

    proxy.reset()
    second = generate(path)
    assert second.returncode == 0, second.stderr[-3000:]
    resent = sum(proxy.attempts.values())
    assert 0 < resent < total  # only what had failed (and what depended on it) reached the server again
    third = generate(path)
    assert third.returncode == 0, third.stderr[-3000:]

    assert final_data(out) == expected  # nothing lost, nothing duplicated, same bytes
    manifest = json.loads((out / "manifest.json").read_text())
    retried = sum(f["retried"] for f in manifest["funnel"].values())
    assert retried > 0 and all(f["final_after_retries"] == 0 for f in manifest["funnel"].values())
    assert all(f["adds_up"] for f in manifest["funnel"].values())
    assert not list(out.glob("*/*/_pending/*.json"))
