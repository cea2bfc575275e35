"""The one language table used everywhere: FLORES-200 codes <-> ISO 639-1/639-3 <-> English names <-> XL-Sum names.

`get_language` accepts any of these spellings (and a few common aliases) and rejects unknown codes with a clear error.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated

from pydantic import AfterValidator


@dataclass(frozen=True)
class Language:
    flores: str  # FLORES-200 code, e.g. hin_Deva: the canonical id in mlift
    iso1: str | None  # ISO 639-1, e.g. hi (None where the language has none)
    name: str  # English name, e.g. Hindi
    xlsum: str | None  # XL-Sum config name, e.g. hindi

    @property
    def iso3(self) -> str:
        return self.flores.split("_")[0]

    @property
    def script(self) -> str:
        return self.flores.split("_")[1]

    @property
    def short(self) -> str:
        """The short code used in file and task names: ISO 639-1 where it exists, else the FLORES code."""
        return self.iso1 or self.flores


class UnknownLanguageError(ValueError):
    pass


# Spellings seen in the wild that are not in the table's columns.
_ALIASES = {
    "cmn": "zho_Hans", "cmn_hans": "zho_Hans", "zh-cn": "zho_Hans", "zh_hans": "zho_Hans", "zh-hans": "zho_Hans",
    "zh-tw": "zho_Hant", "zh_hant": "zho_Hant", "zh-hant": "zho_Hant", "cmn_hant": "zho_Hant",
    "ara": "arb_Arab", "swa": "swh_Latn", "fas": "pes_Arab", "per": "pes_Arab", "msa": "zsm_Latn", "lav": "lvs_Latn",
    "mon": "khk_Cyrl", "nep": "npi_Deva", "orm": "gaz_Latn", "pus": "pbt_Arab", "uzb": "uzn_Latn", "sqi": "als_Latn",
    "yid": "ydd_Hebr", "mlg": "plt_Latn", "aze": "azj_Latn", "kur": "kmr_Latn", "ori": "ory_Orya", "nor": "nob_Latn",
    "no": "nob_Latn", "iw": "heb_Hebr", "in": "ind_Latn", "fil": "tgl_Latn", "chinese": "zho_Hans",
    "serbian_latin": "srp_Cyrl", "pidgin": None,
}


@cache
def all_languages() -> tuple[Language, ...]:
    text = resources.files("mlift").joinpath("resources/languages.tsv").read_text(encoding="utf-8")
    langs = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        flores, iso1, name, xlsum = (line.split("\t") + ["", "", ""])[:4]
        langs.append(Language(flores=flores, iso1=iso1 or None, name=name, xlsum=xlsum or None))
    return tuple(langs)


@cache
def _index() -> dict[str, Language]:
    index: dict[str, Language] = {}
    by_flores = {lang.flores: lang for lang in all_languages()}
    for lang in all_languages():
        for key in (lang.flores, lang.iso1, lang.name, lang.xlsum):
            if key:
                index.setdefault(key.lower(), lang)
    for lang in all_languages():  # ISO 639-3 alone: the first script listed wins (ace_Arab < ace_Latn is fine)
        index.setdefault(lang.iso3, lang)
    for alias, flores in _ALIASES.items():
        if flores:
            index.setdefault(alias, by_flores[flores])
    return index


def get_language(code: str) -> Language:
    """Look up a language by FLORES code, ISO 639-1/3, English name or XL-Sum name (case-insensitive)."""
    if not isinstance(code, str) or not code.strip():
        raise UnknownLanguageError(f"language code must be a non-empty string, got {code!r}")
    key = code.strip().lower()
    lang = _index().get(key) or _index().get(key.replace(" ", "_"))
    if lang is None:
        close = difflib.get_close_matches(code.strip().lower(), list(_index()), n=3, cutoff=0.75)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownLanguageError(
            f"unknown language {code!r}: use a FLORES-200 code (e.g. hin_Deva), an ISO 639-1 code (e.g. hi) "
            f"or an English name (e.g. Hindi){hint}"
        )
    return lang


def check_language(code: str) -> str:
    """A pydantic validator: an unknown code fails when the recipe is loaded, with its file, line and key."""
    get_language(code)
    return code


# A recipe field holding a language: `langs: list[LangCode]` (kept as written, so recipe hashes do not change).
LangCode = Annotated[str, AfterValidator(check_language)]


def flores(code: str) -> str:
    return get_language(code).flores


def name(code: str) -> str:
    return get_language(code).name
