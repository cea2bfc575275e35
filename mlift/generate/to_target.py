"""Stage 5: translate the kept English instruction back to L and pair it with the ORIGINAL native fragment.

The translated instruction must be in L by the same language ID as the fragments stage (its detector, model and
threshold): a translator that echoes English or drifts to another language drops the pair with
`instruction_not_in_target_language`. Output records are in chat form, ready for TRL's SFTTrainer and
`datasets.load_dataset("json", ...)`:
{"id", "lang", "messages": [{"role": "user", "content": instruction_L}, {"role": "assistant", "content": fragment_L}],
 "meta": {source, offsets, scores, models, instruction_en, fragment_en}}. The response is never machine-translated.
With the recipe's `contamination:` section, each final pair is then checked against the eval sets (flagged or dropped).
"""

from __future__ import annotations

from mlift.generate.config import LangIDConfig
from mlift.generate.fragments import langid_check
from mlift.languages import get_language
from mlift.records import Record
from mlift.runner.stage import Outcome
from mlift.translate.stage import TranslateStage
from mlift.translate.translators import Translator

NOT_IN_L = "instruction_not_in_target_language"


class TargetLanguageCheck:
    """The fragments stage's language check (detector, per-language choice, script, threshold) on the instruction;
    ((reason, detail) or None, P(L) or None)."""

    def __init__(self, lang: str, cfg: LangIDConfig):
        self.lang = get_language(lang)
        self.check = langid_check(cfg, lang) if cfg.enabled and cfg.check_instruction else None

    def __call__(self, text: str) -> tuple[tuple[str, str] | None, float | None]:
        if self.check is None:
            return None, None
        ok, why, scores = self.check.check(text)
        return (None if ok else (NOT_IN_L, why)), scores.get("lang_id")


class ToTargetStage:
    name = "to_target"
    one_to_one = True

    def __init__(self, translator: Translator, lang: str, batch_size: int = 16, langid: LangIDConfig | None = None,
                 contamination=None):
        self.inner = TranslateStage("to_target", translator, {"instruction_en": "instruction"}, tgt=lang, src="eng_Latn",
                                    batch_size=batch_size)
        self.lang_check = TargetLanguageCheck(lang, langid or LangIDConfig())
        self.batch_size = batch_size
        self.contamination = contamination  # a ContaminationStage, or None

    def usage(self) -> dict:
        return self.inner.usage()

    @property
    def workers(self) -> int:
        return self.inner.workers

    def process(self, batch: list[Record]) -> list[Outcome]:
        out = []
        for o in self.inner.process(batch):
            if o.kind == "keep":
                why, p = self.lang_check(o.record["instruction"])
                if p is not None:
                    o.record.meta.setdefault("scores", {})["instruction_lang"] = round(p, 4)
                o = Outcome.drop(o.record, *why) if why else Outcome.keep(paired_record(o.record))
                if o.kind == "keep" and self.contamination is not None:
                    [o] = self.contamination.process([o.record])
            out.append(o)
        return out


def paired_record(rec: Record) -> Record:
    f = rec.fields
    meta = {**rec.meta, "instruction_en": f["instruction_en"], "fragment_en": f.get("fragment_en")}
    messages = [{"role": "user", "content": f["instruction"]}, {"role": "assistant", "content": f["fragment"]}]
    return Record(id=rec.id, lang=rec.lang, fields={"messages": messages}, meta=meta)
