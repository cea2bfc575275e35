"""lm-eval's own tasks and groups in an eval suite (`tasks: [{lm_eval: global_mmlu_full_{iso1}, langs: [...]}]`): one
TaskSpec per language, its family named after the task, so the report aggregates it per language like mlift's own.

Without `overrides` the name goes to lm-eval as is (hub data). With them (e.g. local copies of the hub files), the
name is wrapped in a group `mlift_<name>`, written as a YAML into the run's tasks folder, whose keys lm-eval 0.4.13
passes down to every task under it (its group factory merges a group's non-structural keys into its members'
configs). The wrapper is a file, not an inline dict: lm-eval passes an inline group's own `task` list down too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlift.eval.configs import dump
from mlift.eval.spec import TaskSpec
from mlift.eval.suite import LmEvalTask
from mlift.languages import Language, get_language


def _fill(value: Any, subs: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{(iso1|iso3|flores|code)\}", lambda m: subs[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _fill(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, subs) for v in value]
    return value


def substitutions(task: LmEvalTask, lang: Language) -> dict[str, str]:
    return {"iso1": lang.short, "iso3": lang.flores.split("_")[0], "flores": lang.flores,
            "code": task.codes.get(lang.flores, lang.short)}


def family_of(task: LmEvalTask) -> str:
    return task.family or task.lm_eval.split("{")[0].strip("_-") or task.lm_eval


def build_lmeval(tasks: list[LmEvalTask], suite_langs: list[str], tasks_dir: Path) -> list[TaskSpec]:
    specs = []
    for task in tasks:
        for code in task.langs or suite_langs:
            lang = get_language(code)
            subs = substitutions(task, lang)
            name = _fill(task.lm_eval, subs)
            source: dict[str, Any] = {"lm_eval_task": name}
            run_as = None
            if task.overrides:
                run_as = f"mlift_{name}"
                source["overrides"] = _fill(task.overrides, subs)
                tasks_dir.mkdir(parents=True, exist_ok=True)
                (tasks_dir / f"{run_as}.yaml").write_text(
                    dump({"group": run_as, "task": [name], **source["overrides"]}), encoding="utf-8")
            specs.append(TaskSpec(name, family_of(task), lang.flores, builtin=True, source=source, run_as=run_as))
    return specs
