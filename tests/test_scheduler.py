"""The streaming scheduler of the LLM stages (mlift/llm/scheduler.py, the runner's window, the openai backend), through
the real runner, translate stage, request cache and openai client, against a local OpenAI-compatible server whose
latency each test chooses (tests/servers.py: LatencyServer, a stand-in for a model server; the client is under test).

- outputs are written in input order when requests finish out of order, byte-identical across runs;
- a user's `concurrency` is what is in flight: never more, and the window is kept full;
- no barrier: slow requests overlap instead of holding up each batch in turn;
- each finished request is on disk in the cache while the others are still in flight, and one request wanted twice
  at once is sent once;
- a record that makes the stage raise fails alone, the others are written in order.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import threading
import time
import zlib
from pathlib import Path

import pytest

from mlift.llm import Completion, GenParams, OpenAILLMConfig, Request, RequestCache, make_llm
from mlift.records import Record, shard_name
from mlift.runner.stage import ShardInput, StageRunner
from mlift.translate.stage import TranslateStage
from mlift.translate.translators import LLMTranslator, LLMTranslatorConfig


@pytest.fixture(scope="module")
def server():
    from servers import LatencyServer

    srv = LatencyServer()
    yield srv
    srv.stop()


def translator(server, cache_dir: Path | None, concurrency: int, **kw) -> LLMTranslator:
    llm = OpenAILLMConfig(backend="openai", model="stand-in", base_url=server.url + "/v1", concurrency=concurrency,
                          max_retries=0, timeout_s=30, **kw)
    cfg = LLMTranslatorConfig(kind="llm", mode="completion", fewshot=0, max_new_tokens=8, llm=llm)
    return LLMTranslator(make_llm(llm, cache_dir), cfg)


def records(n: int, slow: set[int] = frozenset()) -> list[Record]:
    return [Record(id=f"r{i:04d}", lang="fra_Latn", fields={"text": f"{'SLOW ' if i in slow else ''}phrase {i}"})
            for i in range(n)]


def run(tmp: Path, server, recs: list[Record], concurrency: int, batch_size: int = 4, shards: int = 1,
        stage_cls=TranslateStage, **llm) -> StageRunner:
    runner = StageRunner(tmp / "run", shards, progress=False)
    stage = stage_cls("to_en", translator(server, tmp / "run", concurrency, **llm), {"text": "text_en"}, "en",
                      batch_size=batch_size)
    per = -(-len(recs) // shards)
    inputs = [ShardInput(j, shards, lambda j=j: iter([Record.from_json(r.to_json()) for r in recs[j * per:(j + 1) * per]]))
              for j in range(shards)]
    runner.run(stage, inputs)
    return runner


def kept(tmp: Path, shards: int = 1) -> bytes:
    return b"".join((tmp / "run/to_en" / shard_name(j, shards)).read_bytes() for j in range(shards))


def jitter(seed: int, top: float):
    """A random latency per prompt (0 to `top` seconds), different for each seed: completions finish out of order."""
    return lambda text: random.Random(f"{seed}:{text}").uniform(0, top)


def test_outputs_keep_the_input_order_when_requests_finish_out_of_order(server, tmp_path):
    """A window of 6 batches (lookahead 24 records), often full: batches finish in any order, across shards."""
    recs = records(120)
    server.reset(jitter(1, 0.06))
    run(tmp_path / "a", server, recs, concurrency=16, shards=3, lookahead=24)
    order = list(server.answered)
    server.reset(jitter(2, 0.06))
    run(tmp_path / "b", server, recs, concurrency=16, shards=3, lookahead=24)
    assert order != list(server.answered)  # the server answered in different orders ...
    a = kept(tmp_path / "a", 3)
    assert a == kept(tmp_path / "b", 3)  # ... and the outputs are the same bytes, in input order
    rows = [json.loads(line) for line in a.splitlines()]
    assert [r["id"] for r in rows] == [r.id for r in recs]
    assert all(r["text_en"].startswith("ans-") for r in rows)


def test_concurrency_is_what_is_in_flight(server, tmp_path):
    """Never more than `concurrency` at the server, and exactly that many while there is work: with a stage batch of
    4 records, batch after batch would never have more than 4 in flight."""
    server.reset(lambda text: 0.05)
    run(tmp_path, server, records(240), concurrency=16, batch_size=4)
    assert server.peak == 16
    assert len(server.answered) == 240


def test_slow_requests_do_not_hold_up_the_others(server, tmp_path):
    """Four 1.5 s requests among 60 fast ones, concurrency 8, batches of 4: the slow ones overlap (~1.5 s in all);
    with a barrier after each batch, each slow request would stop everything in turn (>= 6 s)."""
    server.reset(lambda text: 1.5 if "SLOW" in text else 0.02)
    start = time.monotonic()
    run(tmp_path, server, records(64, slow={0, 16, 32, 48}), concurrency=8, batch_size=4)
    wall = time.monotonic() - start
    assert wall < 3.0, f"{wall:.2f} s"
    assert [json.loads(x)["id"] for x in kept(tmp_path).splitlines()] == [r.id for r in records(64)]


def test_each_finished_request_is_on_disk_while_the_others_run(server, tmp_path):
    server.reset(lambda text: 4.0 if "SLOW" in text else 0.01)
    tr = translator(server, tmp_path, concurrency=8)
    texts = [f"phrase {i}" for i in range(30)] + ["SLOW phrase"]
    worker = threading.Thread(target=tr.translate, args=(texts, "fr", "en"))
    worker.start()
    deadline = time.monotonic() + 3.0
    on_disk = 0
    while time.monotonic() < deadline and on_disk < 30:
        time.sleep(0.1)
        on_disk = len(RequestCache(tmp_path / "llm_cache.sqlite", writer="reader").keys())  # another process's view
    assert on_disk == 30 and worker.is_alive()  # the slow request is still in flight
    worker.join()
    assert len(RequestCache(tmp_path / "llm_cache.sqlite", writer="reader").keys()) == 31


def test_a_request_wanted_twice_at_once_is_sent_once(server, tmp_path):
    """The same line in many records of different batches, all in flight at once: one request reaches the server."""
    server.reset(lambda text: 0.3)
    recs = [Record(id=f"r{i}", lang="fra_Latn", fields={"text": "la même phrase"}) for i in range(24)]
    run(tmp_path, server, recs, concurrency=8, batch_size=2)
    assert len(server.answered) == 1
    assert len(kept(tmp_path).splitlines()) == 24


class RaisingStage(TranslateStage):
    """Raises for the batch that holds record r0013 (a bug in a stage's own code, not an LLM failure)."""

    def process(self, batch):
        if any(r.id == "r0013" for r in batch):
            raise ValueError("stage bug on r0013")
        return super().process(batch)


def test_a_record_that_makes_the_stage_raise_fails_alone(server, tmp_path):
    server.reset(jitter(3, 0.03))
    runner = run(tmp_path, server, records(40), concurrency=8, batch_size=4, stage_cls=RaisingStage)
    assert not runner.is_done("to_en", 0)  # transient: pending for the next run
    pending = json.loads((tmp_path / "run/to_en/_pending" / shard_name(0, 1, ".json")).read_text())["pending"]
    assert list(pending) == ["r0013"] and "stage bug on r0013" in pending["r0013"]["detail"]


def test_a_cache_left_mid_commit_by_a_kill_is_still_read(tmp_path):
    """kill -9 during a commit leaves a hot journal beside the writer's file; the next run must still read it."""
    cache = RequestCache(tmp_path / "a" / "llm_cache.sqlite", writer="main")
    llm_keys = [f"k{i}" for i in range(50)]

    cache.put_many([(k, Completion(text="x", completion_tokens=1)) for k in llm_keys])
    assert len(cache) == 50  # committed
    db = sqlite3.connect(cache.path)
    db.execute("BEGIN")
    db.executemany("INSERT INTO completions VALUES (?, ?, 0, 0, 0)", [(f"big{i}", "y" * 5000) for i in range(2000)])
    copy = tmp_path / "b" / "llm_cache"
    copy.mkdir(parents=True)
    for p in cache.root.iterdir():  # the files as a kill mid-commit leaves them: the database and its hot journal
        shutil.copy(p, copy / p.name)
    db.rollback()
    assert (copy / "main.sqlite-journal").exists()
    again = RequestCache(tmp_path / "b" / "llm_cache.sqlite", writer="main")
    assert set(again.get_many(llm_keys)) == set(llm_keys)


def test_generate_from_many_threads_counts_every_request(server, tmp_path):
    server.reset(lambda text: zlib.crc32(text.encode()) % 20 / 1000)
    llm = make_llm(OpenAILLMConfig(backend="openai", model="stand-in", base_url=server.url + "/v1", concurrency=8),
                   tmp_path)
    threads = [threading.Thread(target=llm.generate, args=([Request(prompt=f"t{t} p{i}") for i in range(10)],
                                                            GenParams(max_new_tokens=2))) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    usage = llm.usage()[llm.name]
    assert usage["requests"] == usage["generated"] == 80 and usage["completion_tokens"] == 160
    assert len(llm.cache.keys()) == 80


def test_records_held_are_bounded_by_the_lookahead(server, tmp_path):
    """While the first record's request is slow, the stage reads ahead at most `lookahead` records (24: 6 batches of
    4), however many are waiting: memory is bounded by the window, not by the shard."""
    server.reset(lambda text: 1.0 if "SLOW" in text else 0.0)
    read = [0]

    def reader():
        for rec in records(400, slow={0}):
            read[0] += 1
            yield rec

    seen: list[int] = []
    sampler = threading.Timer(0.7, lambda: seen.append(read[0]))
    sampler.start()
    runner = StageRunner(tmp_path / "run", 1, progress=False)
    stage = TranslateStage("to_en", translator(server, tmp_path / "run", 8, lookahead=24), {"text": "text_en"}, "en",
                           batch_size=4)
    runner.run(stage, [ShardInput(0, 1, reader)])
    assert 24 <= seen[0] <= 24 + 4 and read[0] == 400
