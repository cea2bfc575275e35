"""The eval suite recipe (recipes/eval/*.yaml): which task families, languages, data and model backend. Its own module
so mlift.eval.tasks (task building) and mlift.eval.run (the lm-eval run) both import it without importing each other."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from mlift.fingerprint import Reads
from mlift.languages import LangCode
from mlift.recipe import Schema

_BUDGET = ("None: ceil(budget_factor x the longest reference of the evaluated docs, in the model's tokenizer), so "
           "scripts an English-centric tokenizer splits finely still get room")
_UNTIL = ("stop sequences; None: the template's end-of-turn with a chat template, else {default} (lm-eval always adds "
          "the tokenizer's EOS)")


# The folders of a data root that the tasks read (mlift.eval.tasks, mlift.eval.mmlu): a corpus kept beside them in
# the same root (../shared/data/udhr) is not eval data, and editing it must not make every eval stale.
DATA_FOLDERS = ("flores200", "xlsum", "m_mmlu", "global_mmlu", "mmlu")


def data_files(data_dir: str) -> list[Path] | None:
    """The eval files under a data root, for the suite's fingerprint (mlift/fingerprint.py)."""
    root = Path(data_dir)
    files = sorted(f for d in DATA_FOLDERS if (root / d).is_dir() for f in (root / d).rglob("*") if f.is_file())
    return files or None


class XLSumTask(Schema):
    source: Literal["local", "hub"] = "local"
    hub_id: str = "csebuetnlp/xlsum"
    split: str = "test"
    fewshot_split: str | None = "train"
    max_article_chars: int = Field(2000, ge=1, description="articles are cut here so prompts fit small contexts")
    max_gen_toks: int | None = Field(None, ge=1, description=_BUDGET)
    budget_factor: float = Field(1.5, gt=0)
    until: list[str] | None = Field(None, description=_UNTIL.format(default='"\\n\\n" (summaries may be multi-line)'))
    rouge_mode: Literal["xlsum", "unicode"] = Field(
        "xlsum", description="xlsum: the XL-Sum authors' scorer (multilingual-rouge); unicode: mlift's tokenizer")


class FloresTask(Schema):
    source: Literal["local", "hub"] = "local"
    hub_id: str = "openlanguagedata/flores_plus"  # facebook/flores is a loading script that datasets>=4 refuses
    split: str = "devtest"
    fewshot_split: str = Field("dev", description="few-shot examples come from here, never from the evaluated split")
    fewshot_holdout: int = Field(16, ge=1, description="local data without a dev file, few-shot runs only: the first N "
                                 "lines of the split are the few-shot pool and the rest is evaluated (recorded)")
    directions: list[Literal["xx-en", "en-xx"]] = Field(default_factory=lambda: ["xx-en", "en-xx"])
    pivot: str = "eng_Latn"
    max_gen_toks: int | None = Field(None, ge=1, description=_BUDGET)
    budget_factor: float = Field(1.5, gt=0)
    until: list[str] | None = Field(None, description=_UNTIL.format(default='"\\n" (one sentence per line)'))


class MMLUTask(Schema):
    # okapi / hendrycks_csv / global_mmlu: local files (okapi and global_mmlu also from the hub, via lm-eval's
    # built-in m_mmlu_* / global_mmlu_full_* tasks); mmmlu: hub built-in only
    format: Literal["okapi", "hendrycks_csv", "global_mmlu", "mmmlu"] = "okapi"
    source: Literal["local", "hub"] = "local"
    split: str | None = Field(None, description="local split; default val (okapi) / test (hendrycks_csv, global_mmlu)")
    fewshot_split: str | None = "dev"
    subjects: list[str] | None = Field(None, description="hendrycks_csv: only these subjects")


class LmEvalTask(Schema):
    """Any lm-eval task or group by name, once per language; aggregated per language like mlift's own families."""

    lm_eval: str = Field(description="task or group name; {iso1} (hi), {iso3} (hin), {flores} (hin_Deva) and {code} "
                         "(from `codes`) are replaced per language, e.g. global_mmlu_full_{iso1}, belebele_{flores}")
    langs: list[LangCode] | None = Field(None, description="None: the suite's langs")
    codes: dict[str, str] = Field(default_factory=dict, description="FLORES code -> the benchmark's own language code, "
                                  "for {code}")
    family: str | None = Field(None, description="the report's family; None: the name up to its first placeholder")
    overrides: dict[str, Any] = Field(default_factory=dict, description="lm-eval task-config keys set on every task "
                                      "of it (e.g. dataset_path: json + dataset_kwargs.data_files for local copies in "
                                      "the hub layout); placeholders are replaced in strings")


class EvalSuite(Schema):
    seed: int = 1234
    langs: list[LangCode] = Field(default_factory=lambda: ["hin_Deva", "arb_Arab", "zho_Hans", "fra_Latn"])
    data_dir: Annotated[str | None, Reads(files="mlift.eval.suite:data_files")] = Field(
        None, description="local data root (offline); None: sources marked local need it")
    xlsum: XLSumTask | None = None
    flores: FloresTask | None = None
    mmlu: MMLUTask | None = None
    num_fewshot: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=1, description="docs per task (None: all)")
    backend: Literal["hf", "vllm"] = "hf"
    device: str = "cpu"
    dtype: str = "auto"
    batch_size: int = Field(1, ge=1)  # recorded: batch size can change scores (lm-eval#1645)
    max_length: int | None = Field(None, description="model context; None: lm-eval reads it from the model")
    apply_chat_template: bool | Literal["auto"] = Field(
        "auto", description="auto: on for models trained by `mlift train` (evaluated as they were trained), off "
        "otherwise; the template comes from the adapter/checkpoint directory and its sha256 goes into the manifest")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's default); on a shared CPU "
                                "node, more threads than free cores slows HF generation many times over")
    model_args: dict[str, Any] = Field(default_factory=dict, description="extra lm-eval model_args")
    tasks: list[LmEvalTask] = Field(default_factory=list, description="lm-eval's own tasks/groups per language "
                                    "(recipes/eval/standard_*.yaml)")

    @field_validator("model_args")
    @classmethod
    def _typed_model_args(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # typed against lm-eval's own HFLM signature (imported only when there is something to check)
        if not value or info.data.get("backend") != "hf":
            return value
        from mlift.passthrough import check_section, hflm_types

        return check_section(value, hflm_types(), "lm-eval HFLM", extra_ok=True)
