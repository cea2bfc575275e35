"""MMLU exactly as lm-eval defines it (issue 12 item 4): on the same rows, mlift's local Okapi m_MMLU and Global-MMLU
tasks give lm-eval's built-in `m_mmlu_<lang>` / `global_mmlu_full_<lang>_<subject>` the same prompts, the same
per-item log-likelihoods and the same accuracy. The built-ins are loaded from lm-eval's own YAMLs through its
TaskManager, with only the data source overridden (`dataset_path: json` + `data_files`): nothing touches the hub.

Documented difference: lm-eval's Global-MMLU tasks are per subject, so their few-shot examples come from the same
subject's dev rows; mlift's local Global-MMLU task is one task per language whose few-shot pool is the whole dev file
(the first rows, first_n). The test uses one subject, where the two coincide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_path

N_TEST, N_DEV = 6, 2


def _builtin(manager, name: str, test: Path, dev: Path) -> dict:
    """lm-eval's own config of the built-in task `name`, data source swapped for local files."""
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(manager.task_index[name].yaml_path, resolve_func=True)
    cfg.pop("tag", None)
    return {**cfg, "task": name, "dataset_path": "json", "dataset_name": None,
            "dataset_kwargs": {"data_files": {"test": str(test), "dev": str(dev)}},
            "test_split": "test", "fewshot_split": "dev"}


def _by_doc(samples: list[dict]) -> dict[int, dict]:
    return {s["doc_id"]: s for s in samples}


def _compare(mlift_samples: list[dict], builtin_samples: list[dict]) -> None:
    # lm-eval's in-memory samples hold tuples; mlift's went through JSON like any logged sample file
    a, b = _by_doc(mlift_samples), _by_doc(json.loads(json.dumps(builtin_samples, default=str)))
    assert sorted(a) == sorted(b) == list(range(len(a)))
    for i in a:
        assert a[i]["arguments"] == b[i]["arguments"]  # same (context, continuation) pairs: prompts and choices
        assert a[i]["resps"] == b[i]["resps"] and a[i]["filtered_resps"] == b[i]["filtered_resps"]  # loglikelihoods
        assert a[i]["target"] == b[i]["target"] and a[i]["acc"] == b[i]["acc"]


def _global_rows(okapi_rows: list[dict]) -> list[dict]:
    """Global-MMLU's column layout (sample_id, subject, subject_category, question, option_a..d, answer letter) built
    from real Okapi rows (no Global-MMLU file is available offline)."""
    return [{"sample_id": r["id"], "subject": r["id"].split("/")[0], "subject_category": "Humanities",
             "question": r["instruction"], **{f"option_{c}": r[f"option_{c}"] for c in "abcd"},
             "answer": r["answer"]} for r in okapi_rows]


@pytest.mark.parametrize("lang", ["hi", "fr", "zh"])
def test_local_mmlu_tasks_equal_lm_eval_builtins(tmp_path: Path, stories260k: Path, lang: str) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from mlift.eval.run import run_eval
    from mlift.eval.suite import EvalSuite, MMLUTask

    val = json.loads(shared_path("data", "m_mmlu", f"{lang}_val.json").read_text(encoding="utf-8"))
    dev = json.loads(shared_path("data", "m_mmlu", f"{lang}_dev.json").read_text(encoding="utf-8"))
    subject = val[0]["id"].split("/")[0]
    g_val = _global_rows([r for r in val if r["id"].startswith(subject + "/")][:N_TEST])
    g_dev = _global_rows([r for r in dev if r["id"].startswith(subject + "/")][:N_DEV])
    data = tmp_path / "data"
    for folder, test_rows, dev_rows, test_split in (("m_mmlu", val[:N_TEST], dev[:N_DEV], "val"),
                                                    ("global_mmlu", g_val, g_dev, "test")):
        (data / folder).mkdir(parents=True)
        for split, rows in ((test_split, test_rows), ("dev", dev_rows)):
            (data / folder / f"{lang}_{split}.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")

    tables = {}
    for fmt in ("okapi", "global_mmlu"):  # mlift's own path: the suite -> run_eval -> written tasks -> lm-eval
        suite = EvalSuite(langs=[lang], data_dir=str(data), threads=1, num_fewshot=1, mmlu=MMLUTask(format=fmt))
        tables[fmt] = run_eval(suite, str(stories260k), tmp_path / fmt)

    tasks_root = Path(lm_eval.__file__).parent / "tasks"
    manager = TaskManager(include_path=[str(tasks_root / "okapi" / "mmlu_multilingual"),
                                        str(tasks_root / "global_mmlu" / "full" / lang)], include_defaults=False)
    builtin = {"okapi": f"m_mmlu_{lang}", "global_mmlu": f"global_mmlu_full_{lang}_{subject}"}
    specs = [_builtin(manager, builtin["okapi"], data / "m_mmlu" / f"{lang}_val.json",
                      data / "m_mmlu" / f"{lang}_dev.json"),
             _builtin(manager, builtin["global_mmlu"], data / "global_mmlu" / f"{lang}_test.json",
                      data / "global_mmlu" / f"{lang}_dev.json")]
    ref = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": str(stories260k), "dtype": "auto"},
                                  tasks=specs, num_fewshot=1, batch_size=1, device="cpu", log_samples=True,
                                  task_manager=manager, random_seed=1234, numpy_random_seed=1234,
                                  torch_random_seed=1234, fewshot_random_seed=1234, bootstrap_iters=0)
    names = {"okapi": f"mlift_mmlu_okapi_{tables['okapi'][0]['lang']}",
             "global_mmlu": f"mlift_mmlu_global_{tables['global_mmlu'][0]['lang']}"}
    for fmt in ("okapi", "global_mmlu"):
        ours = [json.loads(x) for x in (tmp_path / fmt / "samples" / f"{names[fmt]}.jsonl").read_text().splitlines()]
        assert len(ours) == N_TEST
        theirs = ref["samples"][builtin[fmt]]
        _compare(ours, theirs)
        # the few-shot example is the first dev row, as lm-eval's first_n sampler takes it
        assert (dev[0]["instruction"] if fmt == "okapi" else g_dev[0]["question"]).strip() in \
            ours[0]["arguments"][0][0]
        acc = next(r["value"] for r in tables[fmt] if r["metric"] == "acc")
        assert acc == pytest.approx(ref["results"][builtin[fmt]]["acc,none"])
