"""xP3 / Aya-collection-style templated NLP data: labelled datasets turned into instruction pairs by promptsource-like
Jinja templates (`input ||| target`) kept in baselines/templates/<task>.yaml, several per task, in English and in
target languages, with answer choices.

Only train splits are used: asking for any other split (or a local file named like an eval split) is refused, so eval
data never leaks into a training set through this builder."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import jinja2
import yaml
from pydantic import Field

from mlift.baselines.common import record_rng
from mlift.data.contamination import BuildCheck
from mlift.data.conversations import chat
from mlift.fingerprint import InputPath, Reads
from mlift.languages import get_language
from mlift.recipe import RecipeError, Schema
from mlift.records import Record

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "baselines" / "templates"
TRAIN_SPLITS = ("train",)
_EVAL_NAME = re.compile(r"(^|[^a-z])(test|val|valid|validation|dev|devtest|eval)([^a-z]|$)", re.I)


class EvalSplitError(RecipeError):
    """A templated build was pointed at an evaluation split."""


class TemplatedSource(Schema):
    task: str = Field(description="a template file in the templates dir: summarization, nli, paraphrase, qa")
    source: str = Field(description="xlsum | xnli | pawsx | tydiqa | jsonl")
    langs: list[str] = Field(min_length=1)
    split: str = "train"
    local_dir: InputPath | None = Field(None, description="xlsum: directory of <language>_<split>.jsonl (else the hub)")
    path: InputPath | None = Field(None, description="jsonl: a local file in the dataset's schema; {lang} is replaced by "
                                               "the FLORES code")
    limit: int | None = Field(None, ge=1, description="per language")
    revision: str | None = Field(None, description="hub revision; None: main, or the parquet export "
                                                   "(refs/convert/parquet) where main is a loading script (xlsum)")


class TemplatedRecipe(Schema):
    seed: int = 0
    output_dir: str
    num_shards: int = Field(2, ge=1)
    templates_dir: Annotated[str | None, Reads(default=(str(TEMPLATES_DIR),))] = Field(
        None, description="default: baselines/templates of the repo")
    datasets: list[TemplatedSource] = Field(min_length=1)
    templates_per_example: int = Field(1, ge=1)
    template_langs: str = Field("both", pattern="^(english|target|both)$",
                                description="use English templates, target-language templates, or both")
    batch_size: int = Field(64, ge=1)
    contamination: BuildCheck | None = Field(None, description="n-gram check against eval sets, in the manifest")


def check_train_split(split: str, path: str | None = None) -> None:
    if split not in TRAIN_SPLITS:
        raise EvalSplitError(f"templated baselines use train splits only; refusing split {split!r} "
                             "(eval data must never become training data)")
    if path is not None and _EVAL_NAME.search(Path(path).name):
        raise EvalSplitError(f"templated baselines use train splits only; refusing {path} (named like an eval split)")


# ---- loaders: each yields dicts in the dataset's own schema, plus a stable id ----

def _hub(name: str, config: str | None, split: str, revision: str | None = None):
    from mlift.data.hub import load_config

    check_train_split(split)
    return load_config(name, config, split, revision)[0]


def load_rows(src: TemplatedSource, lang: str) -> list[dict[str, Any]]:
    """Rows of one language, train split only. Hub names/configs: csebuetnlp/xlsum (<xlsum name>),
    facebook/xnli (<iso1>), google-research-datasets/paws-x (<iso1>), google-research-datasets/tydiqa
    (secondary_task, filtered by the language prefix of the id)."""
    check_train_split(src.split, src.path)
    language = get_language(lang)
    if src.source == "jsonl" or src.path:
        if not src.path:
            raise RecipeError(f"datasets[{src.task}]: source jsonl needs path")
        path = Path(src.path.format(lang=language.flores))
        check_train_split(src.split, str(path))
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8-sig").splitlines() if x.strip()]
    elif src.source == "xlsum":
        if not language.xlsum:
            raise RecipeError(f"XL-Sum has no {language.name}")
        if src.local_dir:
            path = Path(src.local_dir) / f"{language.xlsum}_{src.split}.jsonl"
            check_train_split(src.split, str(path))
            rows = [json.loads(x) for x in path.read_text(encoding="utf-8-sig").splitlines() if x.strip()]
        else:
            rows = list(_hub("csebuetnlp/xlsum", language.xlsum, src.split, src.revision))
    elif src.source == "xnli":
        rows = list(_hub("facebook/xnli", language.iso1, src.split, src.revision))
    elif src.source == "pawsx":
        rows = list(_hub("google-research-datasets/paws-x", language.iso1, src.split, src.revision))
    elif src.source == "tydiqa":
        prefix = language.name.lower() + "-"
        rows = [r for r in _hub("google-research-datasets/tydiqa", "secondary_task", src.split, src.revision)
                if r["id"].startswith(prefix)]
        for r in rows:  # flatten the answer for templates
            r["answer"] = r["answers"]["text"][0] if r["answers"]["text"] else ""
    else:
        raise RecipeError(f"unknown templated source {src.source!r}: xlsum | xnli | pawsx | tydiqa | jsonl")
    rows = [r for r in rows if not isinstance(r.get("label"), int) or r["label"] >= 0]  # -1: unlabelled
    rows = rows[: src.limit] if src.limit else rows
    for i, r in enumerate(rows):
        r.setdefault("id", f"{src.source}-{language.short}-{i}")
    return rows


# ---- templates ----

class Template(Schema):
    name: str
    lang: str = Field(description="the template's own language (FLORES); eng_Latn templates apply to every language")
    jinja: str = Field(description="promptsource-style: '<input> ||| <target>'")
    answer_choices: str | None = Field(None, description="'a ||| b ||| c'; default: the task's, in the template lang")


class TaskTemplates(Schema):
    task: str
    description: str = ""
    answer_choices: dict[str, str] = Field(default_factory=dict, description="FLORES code -> 'a ||| b ||| c'")
    templates: list[Template] = Field(min_length=1)


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)


@cache
def load_task(task: str, templates_dir: str | None = None) -> TaskTemplates:
    path = Path(templates_dir or TEMPLATES_DIR) / f"{task}.yaml"
    if not path.is_file():
        raise RecipeError(f"no templates for task {task!r}: expected {path}")
    spec = TaskTemplates.model_validate(yaml.safe_load(path.read_text(encoding="utf-8-sig")))
    for t in spec.templates:
        if t.jinja.count("|||") != 1:
            raise RecipeError(f"{path}: template {t.name}: expected exactly one '|||' between input and target")
        _ENV.from_string(t.jinja)  # syntax errors fail at load, not mid-run
    return spec


def choices(spec: TaskTemplates, template: Template) -> list[str] | None:
    raw = template.answer_choices or spec.answer_choices.get(get_language(template.lang).flores)
    return [c.strip() for c in raw.split("|||")] if raw else None


def apply_template(spec: TaskTemplates, template: Template, row: dict[str, Any], lang: str) -> tuple[str, str]:
    """Render one row: (input, target). A missing field raises (StrictUndefined), it never renders empty."""
    text = _ENV.from_string(template.jinja).render(**row, answer_choices=choices(spec, template),
                                                   lang_name=get_language(lang).name)
    prompt, target = (x.strip() for x in text.split("|||", 1))
    return prompt, target


def applicable(spec: TaskTemplates, lang: str, which: str) -> list[Template]:
    flores = get_language(lang).flores
    out = []
    for t in spec.templates:
        tl = get_language(t.lang).flores
        if tl == "eng_Latn" and which in ("english", "both"):
            out.append(t)
        elif tl == flores and tl != "eng_Latn" and which in ("target", "both"):
            out.append(t)
    return out


class TemplateStage:
    """Source rows (fields: task + the dataset's columns) -> chat records, `per_example` templates each, chosen with a
    per-row seeded RNG (stable across shards and reruns)."""

    one_to_one = False

    def __init__(self, name: str, seed: int, per_example: int, which: str, templates_dir: str | None,
                 batch_size: int = 64):
        self.name = name
        self.seed = seed
        self.per_example = per_example
        self.which = which
        self.templates_dir = templates_dir
        self.batch_size = batch_size

    def process(self, batch: list[Record]) -> list:
        from mlift.runner.stage import Outcome

        outcomes = []
        for rec in batch:
            spec = load_task(rec.meta["task"], self.templates_dir)
            temps = applicable(spec, rec.lang, self.which)
            if not temps:
                outcomes.append(Outcome.drop(rec, "no_template", f"no {self.which} template of {spec.task} for {rec.lang}"))
                continue
            rng = record_rng(self.seed, rec.id)
            for t in rng.sample(temps, min(self.per_example, len(temps))):
                try:
                    prompt, target = apply_template(spec, t, rec.fields, rec.lang)
                except (jinja2.UndefinedError, IndexError, TypeError) as exc:
                    outcomes.append(Outcome.quarantine(rec, "template_error", f"{t.name}: {exc}"))
                    continue
                if not prompt or not target:
                    outcomes.append(Outcome.drop(rec, "empty_render", f"{t.name}: empty input or target"))
                    continue
                meta = {**rec.meta, "source_id": rec.id, "template": t.name, "template_lang": t.lang}
                outcomes.append(Outcome.keep(Record(id=f"{rec.id}:{t.name}", lang=rec.lang,
                                                    fields={"messages": chat(prompt, target)}, meta=meta)))
        return outcomes
