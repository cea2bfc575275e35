"""Translators behind one interface: texts + source language + target language -> one result per text.

- `LLMTranslator`: any LLM backend, prompted (chat for instruct models, few-shot completion for base models).
- `Seq2SeqTranslator`: MT models via transformers: NLLB, M2M100, MADLAD-400, Marian.
Both go through the per-request cache and count tokens. Languages are given in any spelling the language table knows.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field

from mlift.fingerprint import Reads
from mlift.languages import Language, get_language
from mlift.llm import CachedLLM, Completion, GenParams, LLMConfig, Request, RequestCache, make_llm
from mlift.llm.cache import request_key
from mlift.prompts import render
from mlift.recipe import Schema


class Translator(Protocol):
    name: str

    def translate(self, texts: list[str], src: str, tgt: str) -> list[Completion]: ...

    def usage(self) -> dict[str, dict[str, float]]: ...


class LLMTranslatorConfig(Schema):
    kind: Literal["llm"]
    llm: LLMConfig
    mode: Literal["auto", "chat", "completion"] = Field("auto", description="auto: chat if the model has a chat template")
    fewshot: int = Field(3, ge=0, description="examples shown before the text (completion mode: always useful)")
    fewshot_file: Annotated[str | None, Reads(default=("mlift:resources/fewshot_translation.jsonl",))] = Field(
        None, description="JSONL of aligned rows {flores_code: text}; default: packaged")
    prompt: Annotated[str | None, Reads("prompt", default=("translate_chat", "translate_completion"))] = Field(
        None, description="Jinja template path overriding the packaged one")
    max_new_tokens: int = Field(256, ge=1, description="per line")
    on_truncated: Literal["drop", "keep"] = Field(
        "drop", description="a line whose output reached max_new_tokens: drop the text (translation_truncated), or keep "
        "the cut output, counted in usage as truncated_lines (tiny-model rehearsals, whose models never end a line)")


class Seq2SeqTranslatorConfig(Schema):
    kind: Literal["seq2seq"]
    model: str = Field(description="e.g. facebook/nllb-200-distilled-600M, google/madlad400-3b-mt, Helsinki-NLP/opus-mt-fr-en")
    family: Literal["auto", "nllb", "m2m100", "madlad", "marian"] = "auto"
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int = Field(512, ge=1)
    num_beams: int = Field(1, ge=1)
    revision: str | None = None
    cache: bool = True


TranslatorConfig = Annotated[LLMTranslatorConfig | Seq2SeqTranslatorConfig, Field(discriminator="kind")]


def make_translator(cfg: TranslatorConfig, cache_dir: str | Path | None, seed: int = 0) -> Translator:
    if cfg.kind == "llm":
        return LLMTranslator(make_llm(cfg.llm, cache_dir, seed), cfg)
    cache_db = RequestCache(Path(cache_dir) / "llm_cache.sqlite") if cfg.cache and cache_dir is not None else None
    return Seq2SeqTranslator(cfg, cache_db)


@cache
def _fewshot_rows(path: str | None) -> tuple[dict[str, str], ...]:
    text = Path(path).read_text(encoding="utf-8") if path else \
        resources.files("mlift").joinpath("resources/fewshot_translation.jsonl").read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def fewshot_examples(src: Language, tgt: Language, k: int, path: str | None = None) -> list[dict[str, str]]:
    rows = [r for r in _fewshot_rows(path) if src.flores in r and tgt.flores in r]
    return [{"src": r[src.flores], "tgt": r[tgt.flores]} for r in rows[:k]]


class LLMTranslator:
    """Line by line (so paragraph structure survives and base models can stop at a newline), through the cache. A
    line whose output used all `max_new_tokens` (or that the server ended with finish_reason "length") was cut: its
    text fails with `translation_truncated`, as with the seq2seq translators (unless `on_truncated: keep`)."""

    def __init__(self, llm: CachedLLM, cfg: LLMTranslatorConfig):
        self.llm = llm
        self.cfg = cfg
        self.name = f"llm:{llm.name}"
        self.mode = llm.prompt_mode(cfg.mode)
        self.truncated_lines = 0
        self._lock = threading.Lock()  # translate() runs on several threads at once (the runner's window)

    def parallel_batches(self, batch_size: int) -> int:
        return self.llm.parallel_batches(batch_size)

    def usage(self) -> dict[str, dict[str, float]]:
        usage = self.llm.usage()
        if self.truncated_lines:
            usage.setdefault(self.name, {})["truncated_lines"] = self.truncated_lines
        return usage

    def _request(self, line: str, src: Language, tgt: Language) -> Request:
        examples = fewshot_examples(src, tgt, self.cfg.fewshot, self.cfg.fewshot_file)
        names = {"src_name": src.name, "tgt_name": tgt.name}
        if self.mode == "completion":
            return Request(prompt=render(self.cfg.prompt or "translate_completion", examples=examples, text=line, **names))
        template = self.cfg.prompt or "translate_chat"
        messages: list[dict[str, str]] = []
        for ex in examples:
            messages += [{"role": "user", "content": render(template, text=ex["src"], **names)},
                         {"role": "assistant", "content": ex["tgt"]}]
        messages.append({"role": "user", "content": render(template, text=line, **names)})
        return Request(messages=messages)

    def translate(self, texts: list[str], src: str, tgt: str) -> list[Completion]:
        s, t = get_language(src), get_language(tgt)
        params = GenParams(max_new_tokens=self.cfg.max_new_tokens, temperature=0.0,
                           stop=["\n"] if self.mode == "completion" else [], seed=self.llm.seed)
        # Every non-empty line of every text is one request; identical lines are translated once (cache + dedup).
        lines = [text.split("\n") for text in texts]
        requests, where = [], []
        for i, text_lines in enumerate(lines):
            for k, line in enumerate(text_lines):
                if line.strip():
                    requests.append(self._request(line.strip(), s, t))
                    where.append((i, k))
        outs = self.llm.generate(requests, params)
        results = [list(text_lines) for text_lines in lines]
        failed: dict[int, str] = {}
        tokens: Counter = Counter()
        for (i, k), out in zip(where, outs):
            tokens[i, "p"] += out.prompt_tokens
            tokens[i, "c"] += out.completion_tokens
            text = (out.text or "").strip()
            cut = out.ok and hit_token_limit(out, params.max_new_tokens)
            if cut:
                with self._lock:
                    self.truncated_lines += 1
            if cut and self.cfg.on_truncated == "drop":
                # a known limit wins over other failures of the text: a retry would be cut the same way
                if not (failed.get(i) or "").startswith(TRUNCATED):
                    failed[i] = (f"{TRUNCATED}: the translation of line {k + 1} ({len(lines[i][k])} characters) "
                                 f"reached max_new_tokens={params.max_new_tokens}")
            elif not out.ok:
                failed.setdefault(i, out.error or "no output")
            elif not text:
                failed.setdefault(i, f"empty translation of line {k + 1}")
            else:
                results[i][k] = text
        return [
            Completion(text=None, error=failed[i]) if i in failed else
            Completion(text="\n".join(results[i]), prompt_tokens=tokens[i, "p"], completion_tokens=tokens[i, "c"])
            for i in range(len(texts))
        ]


class Seq2SeqTranslator:
    """NLLB / M2M100 / MADLAD-400 / Marian through transformers, batched, with the per-request cache."""

    def __init__(self, cfg: Seq2SeqTranslatorConfig, cache: RequestCache | None = None):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from mlift.llm.hf import pick_device, pick_dtype

        self.cfg = cfg
        self.name = f"seq2seq:{cfg.model}"
        self.cache = cache
        self.device = pick_device(cfg.device)
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model, revision=cfg.revision)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(cfg.model, revision=cfg.revision,
                                                           dtype=pick_dtype(cfg.dtype, self.device))
        self.model.to(self.device).eval()
        self.family = cfg.family if cfg.family != "auto" else detect_family(self.model.config.model_type, self.tokenizer)
        self.counters: Counter = Counter()

    def usage(self) -> dict[str, dict[str, float]]:
        return {self.name: dict(self.counters)}

    def _codes(self, src: Language, tgt: Language) -> tuple[str | None, str | None, str]:
        """(tokenizer src_lang, forced BOS token, input prefix) for this model family."""
        if self.family == "nllb":
            return src.flores, tgt.flores, ""
        if self.family == "m2m100":
            if not src.iso1 or not tgt.iso1:
                raise ValueError(f"M2M100 has no code for {src.name if not src.iso1 else tgt.name}")
            return src.iso1, f"__{tgt.iso1}__", ""
        if self.family == "madlad":
            return None, None, f"<2{tgt.iso1 or tgt.iso3}> "
        return None, None, ""  # marian: one model per direction

    def translate(self, texts: list[str], src: str, tgt: str) -> list[Completion]:
        """Sentence by sentence (MT models are trained on sentences and stop early on long inputs), each line's
        sentences rejoined with the original separators, so the whole text and its line breaks survive. A text with a
        sentence whose output hit max_new_tokens fails with `translation_truncated`."""
        s, t = get_language(src), get_language(tgt)
        plans = [split_units(text) for text in texts]
        units = list(dict.fromkeys(u for plan in plans for u in plan[1::2]))
        done = dict(zip(units, self._translate_units(units, s, t)))
        self.counters["requests"] += len(texts)
        results = []
        for text, plan in zip(texts, plans):
            if not text.strip():
                results.append(Completion(text=None, error="empty source text"))
                continue
            outs = [done[u] for u in plan[1::2]]
            bad = next((o for o in outs if o.error and o.error.startswith(TRUNCATED)), None) or \
                next((o for o in outs if not o.ok), None)
            if bad is not None:
                results.append(Completion(text=None, error=bad.error))
                continue
            pieces = [piece if k % 2 == 0 else outs[k // 2].text for k, piece in enumerate(plan)]
            results.append(Completion(text="".join(pieces).strip(), prompt_tokens=sum(o.prompt_tokens for o in outs),
                                      completion_tokens=sum(o.completion_tokens for o in outs),
                                      cached=all(o.cached for o in outs)))
        return results

    def _translate_units(self, units: list[str], s: Language, t: Language) -> list[Completion]:
        """One sentence per request, batched, through the cache (only complete translations are cached)."""
        import torch

        src_lang, forced, prefix = self._codes(s, t)
        identity = {"backend": "seq2seq", "model": self.cfg.model, "revision": self.cfg.revision, "family": self.family}
        params = {"src": s.flores, "tgt": t.flores, "max_new_tokens": self.cfg.max_new_tokens, "beams": self.cfg.num_beams}
        keys = [request_key(identity, params, {"text": x}) for x in units]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        todo = [i for i, k in enumerate(keys) if k not in hits]
        fresh: dict[int, Completion] = {}
        if src_lang is not None:
            self.tokenizer.src_lang = src_lang
        forced_id = self.tokenizer.convert_tokens_to_ids(forced) if forced else None
        if forced is not None and (forced_id is None or forced_id == self.tokenizer.unk_token_id):
            raise ValueError(f"{self.cfg.model} has no language token {forced!r} for {t.name}")
        for start in range(0, len(todo), self.cfg.batch_size):
            idx = todo[start:start + self.cfg.batch_size]
            batch = self.tokenizer([prefix + units[i] for i in idx], return_tensors="pt", padding=True, truncation=True)
            batch = batch.to(self.device)
            kwargs: dict[str, Any] = {"max_new_tokens": self.cfg.max_new_tokens, "num_beams": self.cfg.num_beams}
            if forced_id is not None:
                kwargs["forced_bos_token_id"] = forced_id
            with torch.inference_mode():
                out = self.model.generate(**batch, **kwargs)
            decoded = self.tokenizer.batch_decode(out, skip_special_tokens=True)
            got = []
            for row, i in enumerate(idx):
                n_out = int((out[row] != self.tokenizer.pad_token_id).sum())
                comp = Completion(text=decoded[row].strip(), prompt_tokens=int(batch["attention_mask"][row].sum()),
                                  completion_tokens=n_out)
                if self._hit_limit(out[row]):
                    comp = Completion(text=None, error=f"{TRUNCATED}: the output of a {len(units[i])}-character "
                                      f"sentence reached max_new_tokens={self.cfg.max_new_tokens}",
                                      prompt_tokens=comp.prompt_tokens, completion_tokens=n_out)
                elif not comp.text:
                    comp = Completion(text=None, error="empty translation")
                fresh[i] = comp
                got.append((keys[i], comp))
                self.counters["prompt_tokens"] += comp.prompt_tokens
                self.counters["completion_tokens"] += comp.completion_tokens
                self.counters["truncated"] += int(bool(comp.error and comp.error.startswith(TRUNCATED)))
            if self.cache is not None:
                self.cache.put_many(got)
        self.counters["sentences"] += len(units)
        self.counters["cache_hits"] += len(hits)
        return [hits[k] if k in hits else fresh[i] for i, k in enumerate(keys)]

    def _hit_limit(self, row) -> bool:
        """Did generation stop at max_new_tokens rather than at EOS? Without forced EOS: no EOS was generated. With a
        forced EOS at the limit (Marian's config), an output of exactly max_new_tokens is counted as cut too."""
        gen = row[1:].tolist()  # row[0] is the decoder start token
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        ends = [k for k, tok in enumerate(gen) if tok in eos_ids]
        if not ends:
            return True
        forced_eos = getattr(self.model.generation_config, "forced_eos_token_id", None)
        return forced_eos is not None and ends[0] + 1 >= self.cfg.max_new_tokens


TRUNCATED = "translation_truncated"


def hit_token_limit(out: Completion, max_new_tokens: int) -> bool:
    """Did an LLM output stop at the token limit? The server said so (finish_reason "length"), or it used the whole
    budget: the token count is kept in the cache, so a cached cut output is caught too (an EOS exactly at the limit
    counts as cut)."""
    return out.extra.get("finish_reason") == "length" or out.completion_tokens >= max_new_tokens


def split_units(text: str) -> list[str]:
    """[separator, sentence, separator, sentence, ..., separator]: the sentences of each line (mlift's sentence spans)
    and everything between them verbatim (spaces, line breaks), so "".join(...) gives back `text`."""
    pieces, pos = [], 0
    for a, b in _line_spans(text):
        pieces += [text[pos:a], text[a:b]]
        pos = b
    return pieces + [text[pos:]]


def _line_spans(text: str) -> list[tuple[int, int]]:
    from mlift.data.text import sentence_spans

    spans, pos = [], 0
    for line in text.split("\n"):
        spans += sentence_spans(text, pos, pos + len(line))
        pos += len(line) + 1
    return spans


def detect_family(model_type: str, tokenizer: Any) -> str:
    name = type(tokenizer).__name__.lower()
    if "nllb" in name:
        return "nllb"
    if model_type == "m2m_100":
        return "m2m100"
    if model_type == "marian":
        return "marian"
    if model_type in ("t5", "mt5"):
        return "madlad"
    raise ValueError(f"cannot tell the translation family of a {model_type!r} model; set family: nllb|m2m100|madlad|marian")


