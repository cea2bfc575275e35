"""A real key, sent: the proxy sees it in the Authorization header (and echoes it back in a 401 body, as some gateways
do), and afterwards it is found nowhere: not in the run directory (shards, quarantine details, manifest, cache), not in
the W&B offline run, not in the logs. The same scanner finds the key when redaction is switched off, so it can fail."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO

import mlift.llm.openai_backend as openai_backend
from mlift.cli import main as mlift_main

KEY_ENV = "MLIFT_TEST_SECRET_KEY"


def files_containing(secret: str, *roots: Path) -> list[Path]:
    """Every file under `roots` whose bytes contain `secret` (raw or JSON-escaped). Never prints the secret."""
    needles = {secret.encode(), json.dumps(secret)[1:-1].encode()}
    hits = []
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            if any(n in data for n in needles):
                hits.append(path)
    return hits


def recipe(tmp_path: Path, name: str, served) -> Path:
    server, proxy = served
    texts = tmp_path / "texts.txt"
    texts.write_text("Bonjour.\nPoison ici.\nMerci beaucoup.\n")
    data = {"output_dir": str(tmp_path / name), "num_shards": 1,
            "input": {"path": str(texts), "lang": "fra_Latn"}, "target_langs": ["eng_Latn"],
            "translator": {"kind": "llm", "mode": "completion", "fewshot": 0, "max_new_tokens": 4, "on_truncated": "keep",
                           "llm": {"backend": "openai", "model": server.model, "base_url": proxy.url + "/v1",
                                   "api_key_env": KEY_ENV, "max_retries": 0, "timeout_s": 30}}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _plan(body: str, attempt: int) -> str:
    return "401echo" if "Poison" in body else "ok"


def test_a_sent_key_appears_nowhere(served, tmp_path):
    _, proxy = served
    proxy.reset(_plan)
    key = "mlk-" + secrets.token_urlsafe(24)
    logs, wandb_dir = tmp_path / "logs", tmp_path / "wandb"
    logs.mkdir()
    wandb_dir.mkdir()
    env = {**os.environ, KEY_ENV: key, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "WANDB_DIR": str(wandb_dir),
           "WANDB_PROJECT": "mlift-secrets-test"}
    with open(logs / "translate.log", "w") as log:
        proc = subprocess.run([sys.executable, "-m", "mlift", "translate", str(recipe(tmp_path, "run", served)),
                               "--no-progress"], env=env, stdout=log, stderr=subprocess.STDOUT, timeout=300)
    assert proc.returncode == 0, (logs / "translate.log").read_text()[-3000:]
    assert proxy.authorizations[f"Bearer {key}"] >= 3  # the key really went over the wire, on every request
    quarantine = (tmp_path / "run/to_en/quarantine/shard-00000-of-00001.jsonl").read_text()
    assert "AuthenticationError" in quarantine and "401" in quarantine  # the echoing 401 reached the run
    assert list(wandb_dir.rglob("*.wandb")), "W&B wrote no offline run: nothing was scanned there"
    assert files_containing(key, tmp_path / "run", wandb_dir, logs) == []


def test_the_scanner_finds_a_key_written_into_a_quarantine_detail(served, tmp_path, monkeypatch):
    """The same run with redaction switched off: the 401 body's key lands in the quarantine detail, and the scanner
    above reports that file."""
    _, proxy = served
    proxy.reset(_plan)
    key = "mlk-" + secrets.token_urlsafe(24)
    monkeypatch.setenv(KEY_ENV, key)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.setattr(openai_backend, "redact", lambda text, secrets=(): text)
    assert mlift_main(["translate", str(recipe(tmp_path, "leaky", served)), "--no-progress"]) == 0
    hits = files_containing(key, tmp_path / "leaky")
    assert tmp_path / "leaky/to_en/quarantine/shard-00000-of-00001.jsonl" in hits
