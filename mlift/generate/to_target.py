"""Stage 5: translate the kept English instruction back to L and pair it with the ORIGINAL native fragment.

Output records are in chat form, ready for TRL's SFTTrainer and `datasets.load_dataset("json", ...)`:
{"id", "lang", "messages": [{"role": "user", "content": instruction_L}, {"role": "assistant", "content": fragment_L}],
 "meta": {source, offsets, scores, models, instruction_en, fragment_en}}. The response is never machine-translated.
With the recipe's `contamination:` section, each final pair is then checked against the eval sets (flagged or dropped).
"""

from __future__ import annotations

from mlift.records import Record
from mlift.runner import Outcome
from mlift.translate import TranslateStage, Translator


class ToTargetStage:
    name = "to_target"
    one_to_one = True

    def __init__(self, translator: Translator, lang: str, batch_size: int = 16, check=None):
        self.inner = TranslateStage("to_target", translator, {"instruction_en": "instruction"}, tgt=lang, src="eng_Latn",
                                    batch_size=batch_size)
        self.batch_size = batch_size
        self.check = check  # a ContaminationStage, or None

    def usage(self) -> dict:
        return self.inner.usage()

    def process(self, batch: list[Record]) -> list[Outcome]:
        out = []
        for o in self.inner.process(batch):
            if o.kind == "keep":
                o = Outcome.keep(to_chat(o.record))
                if self.check is not None:
                    [o] = self.check.process([o.record])
            out.append(o)
        return out


def to_chat(rec: Record) -> Record:
    f = rec.fields
    meta = {**rec.meta, "instruction_en": f["instruction_en"], "fragment_en": f.get("fragment_en")}
    messages = [{"role": "user", "content": f["instruction"]}, {"role": "assistant", "content": f["fragment"]}]
    return Record(id=rec.id, lang=rec.lang, fields={"messages": messages}, meta=meta)
