"""The mistake walk: what a new user really mistypes, over every command. Each case must end with exit 2, a message that
names the file, line, key or argument, no traceback, and every finished run dir under `finished/` unchanged.

The cases are data (CASES): add one per mistake found. They run in-process through `mlift.cli.main` (an exception
that escapes it fails the test: that is the traceback a user would see); a few run as subprocesses to prove the same end
to end. Every check happens before any model loads, so the walk takes seconds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SHARED

STORIES = str(SHARED / "models" / "stories260K")
ALPACA = str(SHARED / "data" / "alpaca" / "alpaca_tiny.json")
XLSUM = str(SHARED / "data" / "xlsum")
LLM = {"backend": "transformers", "model": STORIES}
TRANSLATOR = {"kind": "llm", "mode": "completion", "llm": LLM}
TRAIN = str(REPO / "recipes" / "stories260k" / "lora-sft" / "config.yaml")
SUITE = str(REPO / "recipes" / "eval" / "local_small.yaml")
SWEEP = REPO / "recipes" / "sweeps" / "tiny_cpu.yaml"


# --- recipes (T: the walk's directory) -------------------------------------------------------------------------------

def generate(T: Path, **over) -> dict:
    return {"output_dir": f"{T}/out/gen", "languages": ["fra_Latn"],
            "sources": [{"kind": "text", "path": f"{T}/in/corpus_{{iso3}}.txt", "unit": "line"}],
            "translator": {**TRANSLATOR, "llm": dict(LLM)}, "instruct": {"llm": dict(LLM)}, **over}


def translate(T: Path, **over) -> dict:
    return {"output_dir": f"{T}/out/tr", "input": {"path": f"{T}/in/texts.txt", "lang": "fra_Latn"},
            "target_langs": ["eng_Latn"], "translator": TRANSLATOR, **over}


def alpaca(T: Path, **over) -> dict:
    return {"output_dir": f"{T}/out/ta", "source": {"path": ALPACA, "limit": 4}, "target_langs": ["fra_Latn"],
            "translator": TRANSLATOR, **over}


def pinch(T: Path, **over) -> dict:
    mixture = {"kind": "pinch", "english": {"path": ALPACA, "lang": "eng_Latn"}, "multilingual": {"path": ALPACA,
               "lang": "fra_Latn"}, "langs": ["eng_Latn", "fra_Latn"], "percent": 25, **over.pop("mixture", {})}
    return {"output_dir": f"{T}/out/mix", "mixture": mixture, **over}


def contamination(T: Path, **over) -> dict:
    return {"dataset": f"{T}/in/pairs.jsonl", "output_dir": f"{T}/out/cc",
            "eval_sets": [{"kind": "xlsum", "path": XLSUM, "langs": ["fra_Latn"]}], **over}


def train(T: Path, **over) -> dict:
    base = yaml.safe_load(Path(TRAIN).read_text())
    base.update(output_dir=f"{T}/out/train", model={"name_or_path": STORIES}, data={"datasets": [{"path": ALPACA}]})
    sft = {**base["sft"], **over.pop("sft", {})}
    return {**base, "sft": sft, **over}


def judge(T: Path, **over) -> dict:
    return {"output_dir": f"{T}/out/judge", "model_a": {"path": f"{T}/in/a.jsonl"}, "model_b": {"path": f"{T}/in/a.jsonl"},
            "judge": {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}, **over}


def sweep(T: Path, train_set: list[str] = (), **over) -> dict:
    doc = yaml.safe_load(SWEEP.read_text())
    doc["train"]["set"] = [*doc["train"]["set"], *train_set]
    return {**doc, "output_dir": f"{T}/out/sweep", **over}


def text(content: str):
    """A recipe given as raw YAML text (for mistakes in the YAML itself)."""
    return lambda T: content


# (case id, argv with R = the recipe file and {T} = the walk's dir, recipe maker or None, what the message must name)
CASES: list[tuple[str, list[str], object, list[str]]] = [
    # generate
    ("generate-missing-recipe", ["generate", "{T}/in/no_such_recipe.yaml"], None, ["no_such_recipe.yaml"]),
    ("generate-yaml-syntax", ["generate", "R"], text("output_dir: x\nlanguages: [fra_Latn\n"), ["not valid YAML"]),
    ("generate-recipe-is-a-list", ["generate", "R"], text("- output_dir: x\n"), ["mapping"]),
    ("generate-empty-output-dir", ["generate", "R"], lambda T: generate(T, output_dir=""), ["output_dir", "empty"]),
    ("generate-output-dir-is-file", ["generate", "R"], lambda T: generate(T, output_dir=f"{T}/in/texts.txt"),
     ["output_dir", "not a directory"]),
    ("generate-seed-not-int", ["generate", "R"], lambda T: generate(T, seed="forty-two"), ["seed"]),
    ("generate-num-shards-zero", ["generate", "R", "--set", "num_shards=0"], generate, ["num_shards"]),
    ("generate-language-typo", ["generate", "R"], lambda T: generate(T, languages=["fra_Latm"]), ["languages.0"]),
    ("generate-set-without-equals", ["generate", "R", "--set", "seed"], generate, ["--set 'seed'"]),
    ("generate-set-bad-index", ["generate", "R", "--set", "sources.3.limit=2"], generate, ["--set sources.3", "not an index"]),
    ("generate-binary-corpus", ["generate", "R"],
     lambda T: generate(T, sources=[{"kind": "text", "path": f"{T}/in/binary.txt", "unit": "line"}]),
     ["binary.txt:1", "binary"]),
    ("generate-missing-instruct-model", ["generate", "R", "--set", "instruct.llm.model=../models/nope"], generate,
     ["instruct.llm.model", "../models/nope"]),
    ("generate-batch-size-text", ["generate", "R", "--set", "batch_size=sixteen"], generate, ["batch_size"]),
    # translate
    ("translate-binary-input", ["translate", "R"],
     lambda T: translate(T, input={"path": f"{T}/in/binary.txt", "lang": "fra_Latn"}), ["binary.txt:1", "binary"]),
    ("translate-latin1-input", ["translate", "R"],
     lambda T: translate(T, input={"path": f"{T}/in/latin1.txt", "lang": "fra_Latn"}), ["latin1.txt:2", "UTF-8"]),
    ("translate-empty-input", ["translate", "R"],
     lambda T: translate(T, input={"path": f"{T}/in/empty.txt", "lang": "fra_Latn"}), ["empty.txt", "no text"]),
    ("translate-one-huge-garbage-line", ["translate", "R"],
     lambda T: translate(T, input={"path": f"{T}/in/huge.jsonl"}), ["huge.jsonl:1", "no line"]),
    ("translate-csv-as-jsonl", ["translate", "R"],
     lambda T: translate(T, input={"path": f"{T}/in/table.csv", "format": "jsonl"}), ["table.csv:1"]),
    ("translate-format-typo", ["translate", "R"],
     lambda T: translate(T, input={"path": f"{T}/in/texts.txt", "format": "txt"}), ["input.format"]),
    ("translate-no-target", ["translate", "R"], lambda T: translate(T, target_langs=[]), ["target_langs"]),
    ("translate-batch-size-zero", ["translate", "R", "--set", "batch_size=0"], translate, ["batch_size"]),
    ("translate-output-under-a-file", ["translate", "R"], lambda T: translate(T, output_dir=f"{T}/in/texts.txt/run"),
     ["output_dir", "texts.txt is a file"]),
    ("translate-missing-llm-model", ["translate", "R", "--set", "translator.llm.model={T}/models/nope"], translate,
     ["translator.llm.model", "no such local directory"]),
    ("translate-lines-without-lang", ["translate", "R"], lambda T: translate(T, input={"path": f"{T}/in/texts.txt"}),
     ["input.lang"]),
    # baseline
    ("translated-alpaca-empty-source", ["baseline", "translated-alpaca", "R"],
     lambda T: alpaca(T, source={"path": f"{T}/in/empty.jsonl"}), ["empty.jsonl"]),
    ("translated-alpaca-limit-zero", ["baseline", "translated-alpaca", "R", "--set", "source.limit=0"], alpaca,
     ["source.limit"]),
    ("translated-alpaca-empty-output-dir", ["baseline", "translated-alpaca", "R", "--set", "output_dir="], alpaca,
     ["output_dir", "empty"]),
    ("translated-alpaca-model-is-a-file", ["baseline", "translated-alpaca", "R", "--set",
                                           "translator.llm.model={T}/in/texts.txt"], alpaca,
     ["translator.llm.model", "is a file"]),
    ("sphinx-unknown-key", ["baseline", "sphinx", "R"], lambda T: alpaca(T, nshots={"k": 2}), ["nshots"]),
    ("templated-no-datasets", ["baseline", "templated", "R"],
     lambda T: {"output_dir": f"{T}/out/tp", "datasets": []}, ["datasets"]),
    # mix
    ("mix-percent-over-100", ["mix", "R"], lambda T: pinch(T, mixture={"percent": 150}), ["mixture.percent"]),
    ("mix-empty-source", ["mix", "R"], lambda T: pinch(T, mixture={"multilingual": {"path": f"{T}/in/empty.jsonl"}}),
     ["empty.jsonl", "no readable record"]),
    ("mix-binary-source", ["mix", "R"],
     lambda T: pinch(T, mixture={"multilingual": {"path": f"{T}/in/binary.jsonl", "lang": "fra_Latn"}}),
     ["binary.jsonl", "no readable record"]),
    ("mix-kind-typo", ["mix", "R"], lambda T: pinch(T, mixture={"kind": "pinhc"}), ["mixture.kind"]),
    ("mix-output-dir-is-file", ["mix", "R", "--set", "output_dir={T}/in/texts.txt"], pinch, ["output_dir"]),
    # check-contamination
    ("contamination-dataset-is-an-eval-file", ["check-contamination", "R"],
     lambda T: contamination(T, dataset=f"{XLSUM}/french_test.jsonl"), ["french_test.jsonl", "no readable record"]),
    ("contamination-eval-set-empty-dir", ["check-contamination", "R"],
     lambda T: contamination(T, eval_sets=[{"kind": "xlsum", "path": f"{T}/in"}]), ["eval_sets.0", "no eval text"]),
    ("contamination-eval-kind-typo", ["check-contamination", "R"],
     lambda T: contamination(T, eval_sets=[{"kind": "xlsumm", "path": XLSUM}]), ["eval_sets.0.kind"]),
    ("contamination-binary-dataset", ["check-contamination", "R"],
     lambda T: contamination(T, dataset=f"{T}/in/binary.jsonl"), ["binary.jsonl", "no readable record"]),
    ("contamination-n-zero", ["check-contamination", "R", "--set", "n=0"], contamination, ["n:"]),
    ("contamination-missing-dataset", ["check-contamination", "R"],
     lambda T: contamination(T, dataset=f"{T}/in/no_dataset.jsonl"), ["no_dataset.jsonl"]),
    # train (the finished run in finished/train must stay as it is)
    ("train-lr-not-a-number", ["train", "R", "--set", "sft.learning_rate=1e-4x"], train, ["sft.learning_rate"]),
    ("train-batch-size-word", ["train", "R"], lambda T: train(T, sft={"per_device_train_batch_size": "eight"}),
     ["train-batch-size-word.yaml:11: sft.per_device_train_batch_size", "integer"]),
    ("train-negative-epochs", ["train", "R", "--set", "sft.num_train_epochs=-1"], train,
     ["sft.num_train_epochs", "> 0"]),
    ("train-zero-max-steps", ["train", "R", "--set", "sft.max_steps=0"], train, ["sft.max_steps"]),
    ("train-zero-lr", ["train", "R", "--set", "sft.learning_rate=0"], train, ["sft.learning_rate", "> 0"]),
    ("train-scheduler-typo", ["train", "R", "--set", "sft.lr_scheduler_type=cosin"], train,
     ["sft.lr_scheduler_type", "did you mean 'cosine'"]),
    ("train-sft-key-typo", ["train", "R"], lambda T: train(T, sft={"num_train_epoch": 1}),
     ["sft.num_train_epoch", "did you mean num_train_epochs"]),
    ("train-sft-owned-key", ["train", "R", "--set", "sft.output_dir=x"], train, ["sft.output_dir", "top level"]),
    ("train-packing-not-bool", ["train", "R", "--set", "sft.packing=maybe"], train, ["sft.packing"]),
    ("train-adam-beta2-over-1", ["train", "R", "--set", "sft.adam_beta2=1.5"], train, ["sft.adam_beta2", "< 1"]),
    ("train-report-to-number", ["train", "R", "--set", "sft.report_to=3"], train, ["sft.report_to"]),
    ("train-binary-dataset", ["train", "R", "--set", "data.datasets=[{path: {T}/in/binary.jsonl}]"], train,
     ["binary.jsonl"]),
    ("train-best-model-without-eval", ["train", "R", "--set", "sft.load_best_model_at_end=true"], train,
     ["sft:", "load_best_model_at_end"]),
    ("train-lora-r-zero", ["train", "R", "--set", "lora.r=0"], train, ["lora.r"]),
    ("train-lora-dropout-over-1", ["train", "R", "--set", "lora.dropout=1.5"], train, ["lora.dropout"]),
    ("train-no-datasets", ["train", "R", "--set", "data.datasets=[]"], train, ["data.datasets"]),
    ("train-missing-model-dir", ["train", "R", "--set", "model.name_or_path={T}/models/nope"], train,
     ["model.name_or_path", "no such local directory"]),
    ("train-adapter-as-model", ["train", "R", "--set", "model.name_or_path={T}/finished/train"], train,
     ["model.name_or_path", "adapter"]),
    ("train-empty-output-dir", ["train", "R", "--set", "output_dir="], train, ["output_dir", "empty"]),
    ("train-output-dir-is-file", ["train", "R", "--set", "output_dir={T}/finished/train/manifest.json"], train,
     ["output_dir", "not a directory"]),
    ("train-over-finished-run-with-bad-value", ["train", "R", "--set", "output_dir={T}/finished/train",
                                                "--set", "sft.gradient_accumulation_steps=0"], train,
     ["sft.gradient_accumulation_steps"]),
    # eval
    ("eval-missing-model", ["eval", "--model", "{T}/models/nope", "--suite", SUITE, "--out", "{T}/out/ev"], None,
     ["--model", "nope"]),
    ("eval-adapter-as-model", ["eval", "--model", "{T}/finished/train", "--suite", SUITE, "--out", "{T}/out/ev"], None,
     ["--model", "adapter_config.json"]),
    ("eval-full-model-as-adapter", ["eval", "--model", STORIES, "--adapter", STORIES, "--suite", SUITE,
                                    "--out", "{T}/out/ev"], None, ["--adapter", "not a PEFT adapter"]),
    ("eval-out-is-file", ["eval", "--model", STORIES, "--suite", SUITE, "--out", "{T}/in/texts.txt"], None, ["--out"]),
    ("eval-limit-zero", ["eval", "--model", STORIES, "--suite", SUITE, "--limit", "0", "--out", "{T}/out/ev"], None,
     ["limit"]),
    ("eval-batch-size-zero", ["eval", "--model", STORIES, "--suite", SUITE, "--batch-size", "0", "--out", "{T}/out/ev"],
     None, ["batch_size"]),
    ("eval-fewshot-negative", ["eval", "--model", STORIES, "--suite", SUITE, "--set", "num_fewshot=-1",
                               "--out", "{T}/out/ev"], None, ["num_fewshot"]),
    ("eval-model-args-type", ["eval", "--model", STORIES, "--suite", SUITE, "--set", "model_args.max_length=2k",
                              "--out", "{T}/out/ev"], None, ["model_args.max_length", "2k"]),
    ("eval-limit-not-int", ["eval", "--model", STORIES, "--suite", SUITE, "--limit", "ten", "--out", "{T}/out/ev"], None,
     ["--limit"]),
    # answer
    ("answer-batch-size-zero", ["answer", "--model", STORIES, "--batch-size", "0", "--out", "{T}/out/ans"], None,
     ["--batch-size"]),
    ("answer-max-new-tokens-zero", ["answer", "--model", STORIES, "--max-new-tokens", "0", "--out", "{T}/out/ans"], None,
     ["--max-new-tokens"]),
    ("answer-negative-temperature", ["answer", "--model", STORIES, "--temperature", "-1", "--out", "{T}/out/ans"], None,
     ["--temperature"]),
    ("answer-missing-model", ["answer", "--model", "./models/nope", "--out", "{T}/out/ans"], None, ["--model", "nope"]),
    ("answer-adapter-as-model", ["answer", "--model", "{T}/finished/train", "--out", "{T}/out/ans"], None,
     ["--model", "adapter"]),
    ("answer-missing-adapter", ["answer", "--model", STORIES, "--adapter", "{T}/nope", "--out", "{T}/out/ans"], None,
     ["--adapter", "nope"]),
    ("answer-empty-out", ["answer", "--model", STORIES, "--out", ""], None, ["--out", "empty"]),
    # judge
    ("judge-binary-answers", ["judge", "R"], lambda T: judge(T, model_a={"path": f"{T}/in/binary.jsonl"}),
     ["binary.jsonl"]),
    ("judge-missing-answers", ["judge", "R"], lambda T: judge(T, model_b={"path": f"{T}/in/no_answers.jsonl"}),
     ["no_answers.jsonl"]),
    ("judge-both-b-and-references", ["judge", "R"],
     lambda T: judge(T, reference_by_lang={"fra_Latn": {"path": f"{T}/in/a.jsonl"}}), ["model_b or reference_by_lang"]),
    ("judge-limit-zero", ["judge", "R", "--set", "limit=0"], judge, ["limit"]),
    ("judge-empty-output-dir", ["judge", "R", "--set", "output_dir="], judge, ["output_dir"]),
    # judge-report
    ("judge-report-duplicate-label-seed", ["judge-report", "p-P10@1={T}/finished/j1", "p-P10@1={T}/finished/j2",
                                           "--out", "{T}/out/jr"], None, ["p-P10@1", "twice"]),
    ("judge-report-same-dir-twice", ["judge-report", "a={T}/finished/j1", "b={T}/finished/j1", "--out", "{T}/out/jr"],
     None, ["j1", "twice"]),
    ("judge-report-not-a-judge-dir", ["judge-report", "a={T}/finished/e1", "--out", "{T}/out/jr"], None,
     ["scores.json"]),
    ("judge-report-bad-regex", ["judge-report", "a={T}/finished/j1", "--x", "(", "--out", "{T}/out/jr"], None, ["--x"]),
    ("judge-report-out-is-file", ["judge-report", "a={T}/finished/j1", "--out", "{T}/in/texts.txt"], None, ["--out"]),
    # report (finished/report must stay as it is)
    ("report-duplicate-label-seed", ["report", "same@1={T}/finished/e1", "same@1={T}/finished/e2",
                                     "--out", "{T}/finished/report"], None, ["same@1", "twice"]),
    ("report-same-dir-twice", ["report", "a={T}/finished/e1", "b={T}/finished/e1", "--out", "{T}/finished/report"],
     None, ["e1", "twice"]),
    ("report-metric-wrong-case", ["report", "a={T}/finished/e1", "--metric", "xlsum=rougel",
                                  "--out", "{T}/finished/report"], None, ["xlsum=rougel", "did you mean 'rougeL'"]),
    ("report-metric-unknown-family", ["report", "a={T}/finished/e1", "--metric", "xsum=rougeL",
                                      "--out", "{T}/out/rep"], None, ["xsum", "did you mean 'xlsum'"]),
    ("report-metric-named-twice", ["report", "a={T}/finished/e1", "--metric", "flores=chrf++,chrf++",
                                   "--out", "{T}/out/rep"], None, ["chrf++", "twice"]),
    ("report-metric-family-twice", ["report", "a={T}/finished/e1", "--metric", "flores=chrf++", "--metric",
                                    "flores=spbleu", "--out", "{T}/out/rep"], None, ["flores", "twice"]),
    ("report-metric-no-equals", ["report", "a={T}/finished/e1", "--metric", "rougeL", "--out", "{T}/out/rep"], None,
     ["--metric 'rougeL'"]),
    ("report-baseline-typo", ["report", "natural={T}/finished/e1", "translated={T}/finished/e2", "--baseline",
                              "translatd", "--out", "{T}/out/rep"], None, ["--baseline", "did you mean 'translated'"]),
    ("report-empty-label", ["report", "={T}/finished/e1", "--out", "{T}/out/rep"], None, ["empty LABEL"]),
    ("report-empty-seed", ["report", "a@={T}/finished/e1", "--out", "{T}/out/rep"], None, ["empty SEED"]),
    ("report-missing-dir", ["report", "a={T}/finished/nope", "--out", "{T}/out/rep"], None, ["nope/table.json"]),
    ("report-out-is-file", ["report", "a={T}/finished/e1", "--out", "{T}/in/texts.txt"], None, ["--out"]),
    # sweep: --dry-run validates what every job will validate, the arms' --set values included
    ("sweep-train-lr-typo", ["sweep", "R", "--dry-run"], lambda T: sweep(T, ["sft.learning_rate=1e-4x"]),
     ["sft.learning_rate"]),
    ("sweep-train-negative-epochs", ["sweep", "R", "--dry-run"], lambda T: sweep(T, ["sft.num_train_epochs=-1"]),
     ["sft.num_train_epochs"]),
    ("sweep-eval-limit-zero", ["sweep", "R", "--dry-run"],
     lambda T: {**sweep(T), "eval": {**sweep(T)["eval"], "args": ["--limit", "0"]}}, ["eval.args", "limit"]),
    ("sweep-eval-flag-typo", ["sweep", "R", "--dry-run"],
     lambda T: {**sweep(T), "eval": {**sweep(T)["eval"], "args": ["--limt", "2"]}}, ["eval.args", "--limt"]),
    ("sweep-empty-output-dir", ["sweep", "R", "--dry-run"], lambda T: sweep(T, output_dir=""), ["output_dir"]),
    ("sweep-seeds-not-ints", ["sweep", "R", "--dry-run"], lambda T: sweep(T, seeds=["one"]), ["seeds.0"]),
    # demo
    ("demo-threads-zero", ["demo", "--threads", "0", "--out", "{T}/out/demo"], None, ["--threads"]),
    ("demo-out-is-file", ["demo", "--out", "{T}/in/texts.txt"], None, ["--out"]),
]


# --- the walk's directory --------------------------------------------------------------------------------------------

def eval_table(family_metrics: list[tuple[str, str]]) -> str:
    return json.dumps([{"task": f"mlift_{f}_fra", "family": f, "lang": "fra_Latn", "metric": m, "value": 0.5,
                        "stderr": None, "n": 2} for f, m in family_metrics])


@pytest.fixture(scope="module")
def walk_dir(tmp_path_factory, shared_dir) -> Path:
    return make_walk_dir(tmp_path_factory.mktemp("walk"))


def make_walk_dir(T: Path) -> Path:
    """Inputs (good and bad files) under T/in, and finished runs under T/finished that no case may change."""
    (T / "in").mkdir()
    (T / "in" / "texts.txt").write_text("Bonjour.\nSalut.\n")
    (T / "in" / "corpus_fra.txt").write_text("Bonjour tout le monde.\n")
    (T / "in" / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 4)
    (T / "in" / "binary.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    (T / "in" / "latin1.txt").write_bytes("Bonjour.\nJ'ai été là.\n".encode("latin-1"))
    (T / "in" / "empty.txt").write_text("\n\n")
    (T / "in" / "empty.jsonl").write_text("")
    (T / "in" / "huge.jsonl").write_text("x" * 3_000_000)  # one 3 MB line without a newline, not JSON
    (T / "in" / "table.csv").write_text("id,text\n1,Bonjour\n2,Salut\n")
    row = {"id": "1", "lang": "fra_Latn", "instruction": "Dis bonjour.", "response": "Bonjour."}
    (T / "in" / "a.jsonl").write_text(json.dumps(row) + "\n")
    (T / "in" / "pairs.jsonl").write_text(json.dumps({"lang": "fra_Latn", "instruction": "Dis bonjour.",
                                                      "output": "Bonjour."}) + "\n")
    fin = T / "finished"
    adapter = fin / "train"  # what `mlift train` leaves: an adapter dir with its manifest
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": STORIES, "peft_type": "LORA"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "manifest.json").write_text(json.dumps({"metrics": {"global_step": 10}}))
    for name in ("e1", "e2"):
        (fin / name).mkdir()
        (fin / name / "table.json").write_text(eval_table([("xlsum", "rougeL"), ("flores", "chrf++"),
                                                           ("flores", "spbleu"), ("mmlu", "acc")]))
    for name in ("j1", "j2"):
        (fin / name).mkdir()
        (fin / name / "scores.json").write_text(json.dumps({"model_a": "x", "scores": {"all": {"score": 0.5, "n": 1}}}))
    (fin / "report").mkdir()
    (fin / "report" / "table.md").write_text("| finished report |\n")
    return T


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """`mlift ARGV` in this process: (exit code, stdout + stderr). An exception escaping main fails the test."""
    from mlift.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors (exit 2), or a command's SystemExit("message")
        rc = exc.code if isinstance(exc.code, int) else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def build_argv(case, T: Path) -> list[str]:
    name, argv, make, _ = case
    if make is not None:
        recipe = T / "recipes" / f"{name}.yaml"
        recipe.parent.mkdir(exist_ok=True)
        doc = make(T)
        recipe.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
        argv = [str(recipe) if a == "R" else a for a in argv]
    return [a.replace("{T}", str(T)) for a in argv]


def test_the_walk_covers_every_command():
    from mlift.cli import COMMANDS

    covered = {c[1][0] for c in CASES}
    assert covered == set(COMMANDS), set(COMMANDS) - covered
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_mistake(case, walk_dir, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # shipped recipes name ../shared and recipes/... relative to the checkout
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    before = snapshot(walk_dir / "finished")
    rc, output = run_cli(build_argv(case, walk_dir), capsys)
    assert rc == 2, (rc, output[-3000:])
    assert "Traceback" not in output, output
    for expected in case[3]:
        assert expected in output, (expected, output[-3000:])
    assert snapshot(walk_dir / "finished") == before, "a finished run dir changed"


# --- end to end: a few of the same cases as real subprocesses ----------------------------------------------------------

E2E = ["translate-latin1-input", "train-lr-not-a-number", "report-duplicate-label-seed", "answer-batch-size-zero"]


@pytest.mark.parametrize("name", E2E)
def test_mistake_as_a_subprocess(name, walk_dir):
    case = next(c for c in CASES if c[0] == name)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "mlift", *build_argv(case, walk_dir)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert all(e in proc.stderr for e in case[3]), proc.stderr[-3000:]

