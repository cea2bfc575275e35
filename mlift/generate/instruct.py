"""Stage 3: an English-focused instruct LLM writes the instruction that the English fragment answers.

k candidates per fragment (k > 1: sampled with seeds seed+0..k-1, all cached per request). The answer is cleaned
(first paragraph, quotes and "Instruction:" labels removed); a failed request is quarantined (llm_error), an empty
answer is quarantined (llm_empty), and an answer that is not an instruction (too short/long, or a copy of the
response) is dropped (not_instruction) with the text kept in the drop record.
"""

from __future__ import annotations

import re

from mlift.generate.config import InstructConfig
from mlift.generate.llmutil import make_request
from mlift.llm import CachedLLM, GenParams
from mlift.records import Record
from mlift.runner.stage import Outcome

_LABEL = re.compile(r"^\s*(?:\*\*)?(?:instruction|request|question|user|prompt)\s*(?:\*\*)?\s*[:：]\s*", re.I)


def clean_instruction(text: str) -> str:
    text = text.strip()
    text = _LABEL.sub("", text)
    text = text.split("\n\n")[0].strip()
    if len(text) >= 2 and text[0] in "\"'“«" and text[-1] in "\"'”»":
        text = text[1:-1].strip()
    return " ".join(text.split())


class InstructStage:
    name = "instruct"
    one_to_one = True

    def __init__(self, llm: CachedLLM, cfg: InstructConfig, seed: int, batch_size: int = 16):
        self.llm = llm
        self.cfg = cfg
        self.seed = seed
        self.mode = llm.prompt_mode(cfg.mode)
        self.batch_size = batch_size

    def usage(self) -> dict:
        return self.llm.usage()

    @property
    def workers(self) -> int:
        return self.llm.parallel_batches(self.batch_size)

    def validate(self, text: str, response: str) -> str:
        if len(text) < self.cfg.min_chars:
            return f"{len(text)} chars < {self.cfg.min_chars}"
        if len(text) > self.cfg.max_chars:
            return f"{len(text)} chars > {self.cfg.max_chars}"
        if text.lower() in response.lower():
            return "copies the response"
        return ""

    def process(self, batch: list[Record]) -> list[Outcome]:
        c = self.cfg
        stop = ["\n"] if self.mode == "completion" else []
        cands: list[list] = [[] for _ in batch]
        for k in range(c.k):
            params = GenParams(max_new_tokens=c.max_new_tokens, temperature=0.0 if c.k == 1 else c.temperature,
                               seed=self.seed + k, stop=stop)
            reqs = [make_request(self.mode, c.prompt, "instruct", response=r["fragment_en"]) for r in batch]
            for i, comp in enumerate(self.llm.generate(reqs, params)):
                cands[i].append(comp)
        out = []
        for rec, comps in zip(batch, cands):
            errors = [x.error for x in comps if not x.ok]
            if len(errors) == len(comps):
                out.append(Outcome.quarantine(rec, "llm_error", errors[0] or "no completion"))
                continue
            texts = [clean_instruction(x.text) for x in comps if x.ok]
            if not any(texts):
                out.append(Outcome.quarantine(rec, "llm_empty", "the instruct LLM returned only empty text"))
                continue
            good, bad = [], []
            for t in dict.fromkeys(t for t in texts if t):
                why = self.validate(t, rec["fragment_en"])
                (bad if why else good).append((t, why))
            rec.meta["instruct_model"] = self.llm.name
            if not good:
                rec.fields["instruction_candidates"] = [t for t, _ in bad]
                out.append(Outcome.drop(rec, "not_instruction", "; ".join(f"{t[:80]!r}: {w}" for t, w in bad)))
                continue
            rec.fields["instruction_candidates"] = [t for t, _ in good]
            rec.fields["instruction_en"] = good[0][0]
            out.append(Outcome.keep(rec))
        return out
