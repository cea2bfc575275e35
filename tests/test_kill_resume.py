"""kill -9 at a random point, rerun: the final shards equal an uninterrupted run's, and no finished request is sent to
the model again (the rerun sends exactly the requests that were not finished)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import shared_path

from mlift.llm import RequestCache


def recipe(tmp_path: Path, name: str, url: str, model: str) -> Path:
    data = {
        "seed": 0, "output_dir": str(tmp_path / name), "num_shards": 4, "batch_size": 4,
        "input": {"path": str(shared_path("data", "flores200", "devtest", "fra_Latn.devtest")), "lang": "fra_Latn",
                  "limit": 32},
        "target_langs": ["eng_Latn", "deu_Latn"],
        "translator": {"kind": "llm", "mode": "completion", "fewshot": 1, "max_new_tokens": 8, "on_truncated": "keep",
                       "llm": {"backend": "openai", "model": model, "base_url": url + "/v1", "concurrency": 2,
                               "batch_size": 4, "max_retries": 1}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mlift", "translate", str(path), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ})


def shards(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("to_*/shard-*.jsonl"))}


def test_kill9_and_rerun_gives_identical_output_without_paying_twice(tmp_path, served):
    server, proxy = served
    proxy.reset()
    full = run(recipe(tmp_path, "full", proxy.url, server.model))
    assert full.wait(timeout=300) == 0, full.stdout.read()
    unique = len(proxy.successes)
    assert unique > 20 and max(proxy.successes.values()) == 1

    seed = int(time.time())
    kill_after = random.Random(seed).randint(2, unique - 5)
    proxy.reset()
    killed = run(recipe(tmp_path, "killed", proxy.url, server.model))
    deadline = time.time() + 300
    while sum(proxy.successes.values()) < kill_after and killed.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    out = tmp_path / "killed"
    finished = len(RequestCache(out / "llm_cache.sqlite"))  # every writer's file (one per process, see cache.py)
    assert finished < unique, f"the kill came too late to test anything (seed {seed})"

    proxy.reset()
    rerun = run(recipe(tmp_path, "killed", proxy.url, server.model))
    assert rerun.wait(timeout=300) == 0, rerun.stdout.read()
    assert sum(proxy.attempts.values()) == unique - finished, f"kill after {kill_after} successes (seed {seed})"
    assert shards(out) == shards(tmp_path / "full"), f"seed {seed}"
    assert len(shards(out)) == 8
