"""The request cache shared by many processes (Slurm array tasks on several nodes, one run directory): each process
writes only its own sqlite file (rollback journal, no WAL), reads everyone's; several writers at once lose nothing,
and a reader sees every entry of every writer."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

from mlift.llm import Completion, RequestCache

WRITERS, ENTRIES = 6, 200


def _write(root: str, writer: int, start) -> None:
    cache = RequestCache(f"{root}/llm_cache.sqlite", writer=f"shard-{writer}-of-{WRITERS}")
    start.wait()  # all writers begin together
    for k in range(ENTRIES):  # one commit per entry, as the HTTP backend stores each finished request
        cache.put_many([(f"w{writer}-k{k}", Completion(text=f"text {writer} {k}", prompt_tokens=k, completion_tokens=1))])
        if k % 50 == 0:  # and reads the others' files while they write
            cache.get_many([f"w{(writer + 1) % WRITERS}-k{j}" for j in range(k)])
    cache.close()


def test_many_writers_at_once_then_one_reader_sees_all(tmp_path):
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_write, args=(str(tmp_path), w, start)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    start.set()
    reader = RequestCache(tmp_path / "llm_cache.sqlite", writer="reader")
    seen_during = 0
    while any(p.is_alive() for p in procs):  # a reader during the writes never fails, it only sees fewer entries
        seen_during = max(seen_during, len(reader))
    for p in procs:
        p.join()
        assert p.exitcode == 0
    files = sorted(x.name for x in (tmp_path / "llm_cache").iterdir())
    assert files == [f"shard-{w}-of-{WRITERS}.sqlite" for w in range(WRITERS)]  # no -wal/-shm, no -journal left
    assert len(reader) == WRITERS * ENTRIES >= seen_during
    keys = [f"w{w}-k{k}" for w in range(WRITERS) for k in range(ENTRIES)]
    got = reader.get_many(keys)
    assert len(got) == len(keys) and got["w3-k17"].text == "text 3 17" and got["w3-k17"].cached
    for name in files:
        mode = sqlite3.connect(tmp_path / "llm_cache" / name).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "delete"
    merged = tmp_path / "merged.sqlite"
    assert reader.merge_into(merged) == WRITERS * ENTRIES
    assert sqlite3.connect(merged).execute("SELECT COUNT(*) FROM completions").fetchone()[0] == WRITERS * ENTRIES


def test_an_unreadable_foreign_file_is_a_miss_not_an_error(tmp_path):
    own = RequestCache(tmp_path / "llm_cache.sqlite", writer="a")
    own.put_many([("k", Completion(text="x"))])
    (tmp_path / "llm_cache" / "b.sqlite").write_bytes(b"not a database, or half-written over NFS")
    assert own.get_many(["k", "other"])["k"].text == "x"
    assert RequestCache(tmp_path / "llm_cache.sqlite", writer="c").get_many(["k"])["k"].text == "x"


def test_legacy_single_file_is_still_read(tmp_path):
    legacy = tmp_path / "llm_cache.sqlite"
    db = sqlite3.connect(legacy)
    db.execute("CREATE TABLE completions (key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER,"
               " completion_tokens INTEGER, created REAL)")
    db.execute("INSERT INTO completions VALUES ('old', 'from the old layout', 1, 1, 0)")
    db.commit()
    assert RequestCache(legacy).get_many(["old"])["old"].text == "from the old layout"
