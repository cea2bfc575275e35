"""Stage 2: translate each native fragment to English (`fragment` -> `fragment_en`) with the configured translator.

A thin wrapper over mlift.translate.translators.TranslateStage: failures and a wrong number of outputs go to quarantine there."""

from __future__ import annotations

from mlift.translate.stage import TranslateStage
from mlift.translate.translators import Translator


def to_english_stage(translator: Translator, batch_size: int = 16) -> TranslateStage:
    return TranslateStage("to_english", translator, {"fragment": "fragment_en"}, tgt="eng_Latn", batch_size=batch_size)
