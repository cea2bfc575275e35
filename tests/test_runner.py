"""The stage runner: atomic shards, completion markers, resume, quarantine with reasons, counts, --shard i/n."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlift.records import Record, read_records, shard_name, write_records
from mlift.runner.stage import (
    Outcome,
    ShardInput,
    StageRunner,
    collect_stats,
    parse_shard_selector,
    shard_files,
    write_manifest,
)


class Upper:
    """Keeps records upper-cased, drops empty texts, quarantines texts containing 'BAD'; can crash on demand."""

    name = "upper"
    batch_size = 3

    def __init__(self, crash_on: str | None = None, crash: type[BaseException] = KeyboardInterrupt):
        self.crash_on = crash_on
        self.crash = crash
        self.seen: list[str] = []

    def process(self, batch):
        out = []
        for rec in batch:
            self.seen.append(rec.id)
            if self.crash_on and rec.id == self.crash_on:
                raise self.crash("simulated crash")
            text = rec.get("text", "")
            if not text.strip():
                out.append(Outcome.drop(rec, "empty"))
            elif "BAD" in text:
                out.append(Outcome.quarantine(rec, "bad_word", "contains BAD"))
            else:
                rec.fields["text"] = text.upper()
                out.append(Outcome.keep(rec))
        return out


def make_inputs(tmp_path: Path, n_shards: int = 3, per: int = 5) -> Path:
    src = tmp_path / "input"
    k = 0
    for j in range(n_shards):
        recs = []
        for _ in range(per):
            text = "" if k % 7 == 3 else ("a BAD one" if k % 5 == 4 else f"text {k}")
            recs.append(Record(id=f"r{k}", lang="fra_Latn", fields={"text": text}))
            k += 1
        write_records(src / shard_name(j, n_shards), recs)
    # a malformed line and a non-record line in the last shard: they must land in quarantine, counted
    with open(src / shard_name(n_shards - 1, n_shards), "a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({"text": "no id"}) + "\n")
    return src


def test_counts_add_up_and_outputs_are_readable(tmp_path):
    src = make_inputs(tmp_path)
    runner = StageRunner(tmp_path / "run", 3, progress=False)
    stats = runner.run(Upper(), shard_files(src, 3))
    c = stats.counts
    assert c["in"] == 17
    assert c["in"] == c["keep"] + c["drop"] + c["quarantine"]
    assert stats.reasons["quarantine"]["unreadable"] == 2
    assert stats.reasons["drop"]["empty"] == 2
    assert stats.reasons["quarantine"]["bad_word"] == 3
    kept = [r for j in range(3) for r in read_records(tmp_path / "run/upper" / shard_name(j, 3))]
    assert len(kept) == c["keep"] and all(r["text"].isupper() for r in kept)
    q = [json.loads(x) for x in (tmp_path / "run/upper/quarantine" / shard_name(2, 3)).read_text().splitlines()]
    assert {x["_reason"] for x in q} == {"unreadable", "bad_word"}
    assert any("malformed JSON" in x["_detail"] for x in q)

    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(tmp_path / "run/upper/shard-*.jsonl"), split="train")
    assert len(ds) == c["keep"] and set(ds.column_names) >= {"id", "lang", "text", "meta"}


def test_crash_leaves_no_partial_shard_and_rerun_resumes(tmp_path):
    src = make_inputs(tmp_path)
    runner = StageRunner(tmp_path / "run", 3, progress=False)
    with pytest.raises(KeyboardInterrupt, match="simulated crash"):  # as a kill would: the run stops
        runner.run(Upper(crash_on="r7"), shard_files(src, 3))  # r7 is in shard 1
    stage_dir = tmp_path / "run/upper"
    assert runner.is_done("upper", 0) and not runner.is_done("upper", 1)
    assert not (stage_dir / shard_name(1, 3)).exists()
    assert not list(stage_dir.glob("**/.*tmp*"))  # temp files removed on failure
    again = Upper()
    stats = runner.run(again, shard_files(src, 3))
    assert stats.shards_skipped == 1 and stats.shards_done == 3
    assert not any(rid in again.seen for rid in ("r0", "r1", "r2", "r3", "r4"))  # shard 0 was not redone
    fresh = StageRunner(tmp_path / "fresh", 3, progress=False).run(Upper(), shard_files(src, 3))
    for j in range(3):
        assert (stage_dir / shard_name(j, 3)).read_bytes() == (tmp_path / "fresh/upper" / shard_name(j, 3)).read_bytes()
    assert stats.counts == fresh.counts


def test_shard_selection_splits_work_between_processes(tmp_path):
    src = make_inputs(tmp_path, n_shards=4, per=2)
    done = []
    for i in range(2):
        stage = Upper()
        StageRunner(tmp_path / "run", 4, shard=(i, 2), progress=False).run(stage, shard_files(src, 4))
        done.append(set(stage.seen))
    assert done[0].isdisjoint(done[1])
    assert collect_stats(tmp_path / "run", "upper", 4).shards_done == 4
    assert parse_shard_selector("3/8") == (3, 8)
    for bad in ("8/8", "x", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard_selector(bad)


def test_one_to_one_stage_must_return_one_outcome_per_record(tmp_path):
    class Lossy(Upper):
        def process(self, batch):
            return super().process(batch)[:-1]

    src = make_inputs(tmp_path, n_shards=1)
    with pytest.raises(RuntimeError, match="returned 2 outcomes for 3 records"):
        StageRunner(tmp_path / "run", 1, progress=False).run(Lossy(), shard_files(src, 1))


def test_manifest_records_recipe_seed_versions_and_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY_VAR", "sk-not-for-manifests")
    from mlift.commands.translate import TranslateRecipe
    from mlift.recipe import load_recipe

    src = make_inputs(tmp_path, n_shards=2)
    StageRunner(tmp_path / "run", 2, progress=False).run(Upper(), shard_files(src, 2))
    recipe = load_recipe(None, TranslateRecipe, ["seed=7"], base={
        "output_dir": "x", "input": {"path": "p"}, "target_langs": ["en"],
        "translator": {"kind": "llm", "llm": {"backend": "openai", "model": "m", "api_key_env": "SECRET_KEY_VAR"}}})
    m = write_manifest(tmp_path / "run", recipe, ["upper"], 2)
    on_disk = json.loads((tmp_path / "run/manifest.json").read_text())
    assert on_disk["seed"] == 7 and on_disk["recipe"]["hash"] == recipe.hash
    assert on_disk["versions"]["transformers"] and on_disk["versions"]["mlift"]
    assert on_disk["stages"]["upper"]["counts"] == m["stages"]["upper"]["counts"]
    assert on_disk["stages"]["upper"]["shards_done"] == 2
    text = (tmp_path / "run/manifest.json").read_text()
    assert "SECRET_KEY_VAR" in text and "sk-not-for-manifests" not in text  # the variable's name, never its value


def test_custom_inputs(tmp_path):
    def read():
        yield from (Record(id=str(i), lang="eng_Latn", fields={"text": "x"}) for i in range(4))

    stats = StageRunner(tmp_path / "run", 1, progress=False).run(Upper(), [ShardInput(0, 1, read)])
    assert stats.counts["keep"] == 4


def test_a_run_dir_resumes_only_the_same_recipe(tmp_path):
    from mlift.commands.translate import TranslateRecipe
    from mlift.recipe import RecipeError, load_recipe
    from mlift.runner.stage import guard_run_dir

    base = {"output_dir": "x", "input": {"path": "p"}, "target_langs": ["en"],
            "translator": {"kind": "llm", "llm": {"backend": "openai", "model": "m"}}}
    guard_run_dir(tmp_path, load_recipe(None, TranslateRecipe, base=base))
    guard_run_dir(tmp_path, load_recipe(None, TranslateRecipe, base=base))  # same recipe: resume
    # No data yet (the first run failed on its input): another (corrected) recipe may take the directory.
    guard_run_dir(tmp_path, load_recipe(None, TranslateRecipe, ["seed=2"], base=base))
    StageRunner(tmp_path, 1, progress=False).run(Upper(), [ShardInput(0, 1, lambda: iter(()))])  # now it holds data
    with pytest.raises(RecipeError, match="holds a run of another recipe"):
        guard_run_dir(tmp_path, load_recipe(None, TranslateRecipe, ["seed=1"], base=base))
    guard_run_dir(tmp_path, load_recipe(None, TranslateRecipe, ["seed=2"], base=base))  # its own recipe resumes


def test_record_that_raises_is_isolated_pending_then_final(tmp_path):
    """An exception on one record: the batch is redone in halves, only that record fails (transient: pending), the
    shard has no marker; each rerun counts an attempt; at max_attempts it is quarantined for good and the shard ends."""
    src = make_inputs(tmp_path)
    runner = StageRunner(tmp_path / "run", 3, progress=False, max_attempts=3)
    for attempt in (1, 2):
        stats = runner.run(Upper(crash_on="r7", crash=ValueError), shard_files(src, 3))
        assert stats.shards_done == 2 and stats.shards_pending == 1 and stats.pending == 1
        assert not runner.is_done("upper", 1)
        ledger = json.loads(runner.pending_path("upper", 1).read_text())
        assert ledger["pending"]["r7"]["attempts"] == attempt
        assert "ValueError in stage upper: simulated crash" in ledger["pending"]["r7"]["detail"]
    stats = runner.run(Upper(crash_on="r7", crash=ValueError), shard_files(src, 3))
    assert stats.shards_done == 3 and stats.pending == 0
    assert stats.counts["final"] == 1 and stats.counts["retried"] == 1
    assert not runner.pending_path("upper", 1).exists()
    q = [json.loads(x) for x in (tmp_path / "run/upper/quarantine" / shard_name(1, 3)).read_text().splitlines()]
    final = [x for x in q if x["id"] == "r7"]
    assert final and final[0]["_attempts"] == 3 and final[0]["_reason"] == "stage_error"
    kept = [r.id for r in read_records(tmp_path / "run/upper" / shard_name(1, 3))]
    assert "r5" in kept and "r6" in kept and "r8" in kept  # the rest of the shard went on

    # --retry-quarantined re-opens the shard on purpose; a healthy stage now keeps r7, and the output equals a
    # clean run's.
    retry = StageRunner(tmp_path / "run", 3, progress=False, retry_quarantined=True)
    stats = retry.run(Upper(), shard_files(src, 3))
    assert stats.shards_skipped == 2 and stats.counts["retried"] == 1 and stats.counts["final"] == 0
    fresh = StageRunner(tmp_path / "fresh", 3, progress=False).run(Upper(), shard_files(src, 3))
    for j in range(3):
        assert (tmp_path / "run/upper" / shard_name(j, 3)).read_bytes() == \
            (tmp_path / "fresh/upper" / shard_name(j, 3)).read_bytes()
    assert fresh.counts["keep"] == collect_stats(tmp_path / "run", "upper", 3).counts["keep"]


def test_pending_shard_completes_on_rerun_identically(tmp_path):
    src = make_inputs(tmp_path)
    runner = StageRunner(tmp_path / "run", 3, progress=False)
    stats = runner.run(Upper(crash_on="r7", crash=ConnectionError), shard_files(src, 3))
    assert stats.pending == 1 and not (tmp_path / "run/upper" / shard_name(1, 3)).exists()
    again = Upper()
    stats = runner.run(again, shard_files(src, 3))
    assert stats.shards_skipped == 2 and stats.shards_done == 3 and stats.counts["retried"] == 1
    assert set(again.seen) == {f"r{k}" for k in range(5, 10)}  # only the pending shard was redone
    StageRunner(tmp_path / "fresh", 3, progress=False).run(Upper(), shard_files(src, 3))
    assert (tmp_path / "run/upper" / shard_name(1, 3)).read_bytes() == \
        (tmp_path / "fresh/upper" / shard_name(1, 3)).read_bytes()
