"""The runner stage that translates record fields (`mlift translate`, the generate pipeline's stages 1 and 5, the
baselines), with any translator of mlift/translate/translators.py."""

from __future__ import annotations

from mlift.languages import get_language
from mlift.runner.stage import Outcome
from mlift.translate.translators import TRUNCATED, Translator


class TranslateStage:
    """A runner stage that translates record fields: `fields` maps a source field to the field that receives the
    translation. The source language is the record's `lang` unless `src` is given. A translator failure or a wrong
    number of outputs sends the record to quarantine with the reason; nothing is dropped silently."""

    one_to_one = True
    drop_reasons = (TRUNCATED,)  # a known limit, not a fault: dropped (counted), not quarantined

    def __init__(self, name: str, translator: Translator, fields: dict[str, str], tgt: str, src: str | None = None,
                 batch_size: int = 32):
        self.name = name
        self.translator = translator
        self.fields = fields
        self.tgt = get_language(tgt).flores
        self.src = get_language(src).flores if src else None
        self.batch_size = batch_size

    @property
    def workers(self) -> int:
        """Batches the runner keeps in process at once: many for an HTTP translator, 1 for a local model."""
        parallel = getattr(self.translator, "parallel_batches", None)
        return parallel(self.batch_size) if parallel else 1

    def usage(self) -> dict[str, dict[str, float]]:
        return self.translator.usage()

    def process(self, batch: list) -> list:
        failures: dict[int, tuple[str, str]] = {}
        results: dict[int, dict[str, str]] = {i: {} for i in range(len(batch))}
        by_lang: dict[str, list[int]] = {}
        for i, rec in enumerate(batch):
            by_lang.setdefault(self.src or rec.lang, []).append(i)
        for lang, idx in by_lang.items():
            try:
                get_language(lang)
            except ValueError as exc:
                for i in idx:
                    failures[i] = ("unknown_language", str(exc))
                continue
            for src_field, dst_field in self.fields.items():
                todo = [i for i in idx if i not in failures]
                missing = [i for i in todo if not isinstance(batch[i].get(src_field), str)]
                for i in missing:
                    failures[i] = ("missing_field", f"no text field {src_field!r}")
                todo = [i for i in todo if i not in failures]
                if not todo:
                    continue
                outs = self.translator.translate([batch[i][src_field] for i in todo], lang, self.tgt)
                if len(outs) != len(todo):
                    for i in todo:
                        failures[i] = ("translator_count", f"{self.translator.name} returned {len(outs)} outputs for {len(todo)} texts")
                    continue
                for i, out in zip(todo, outs):
                    if out.ok and out.text.strip():
                        results[i][dst_field] = out.text
                    elif out.error and out.error.startswith(TRUNCATED):
                        failures[i] = (TRUNCATED, out.error)
                    else:
                        failures[i] = ("translation_failed", out.error or "empty translation")
        outcomes = []
        for i, rec in enumerate(batch):
            if i in failures and failures[i][0] in self.drop_reasons:
                outcomes.append(Outcome.drop(rec, *failures[i]))
            elif i in failures:
                outcomes.append(Outcome.quarantine(rec, *failures[i]))
            else:
                rec.fields.update(results[i])
                rec.meta.setdefault("translated_by", {}).update({dst: self.translator.name for dst in results[i]})
                outcomes.append(Outcome.keep(rec))
        return outcomes
