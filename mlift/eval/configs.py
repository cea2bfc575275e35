"""The lm-eval task configs of mlift's families (prompt, targets, stops, metrics), one function per family, used both
for the per-run tasks on local data (mlift.eval.tasks) and for the committed hub tasks in eval/ (mlift.eval.hub), so
the two never differ in anything but where the data comes from and the generation budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FEWSHOT_DELIMITER = "\n\n"
COMPLETION_STOPS = {"xlsum": ["\n\n"], "flores": ["\n"]}  # summaries may be multi-line; FLORES is one sentence


class Fn(str):
    """A `!function utils.<name>` value in a task YAML."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Fn, lambda d, v: d.represent_scalar("!function", f"utils.{v}"))


def dump(config: dict[str, Any]) -> str:
    return yaml.dump(config, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)


def write_task(tasks_dir: Path, config: dict[str, Any]) -> None:
    (tasks_dir / f"{config['task']}.yaml").write_text(dump(config), encoding="utf-8")


def gen_settings(until: list[str], max_gen_toks: int) -> dict[str, Any]:
    return {"until": list(until), "max_gen_toks": int(max_gen_toks), "do_sample": False}








