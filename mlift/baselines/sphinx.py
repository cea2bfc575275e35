"""sPhinX-style selective translation + LANGIT N-shot guided samples.

Stage 1 (`translated/<lang>`): English pairs translated with code, URLs, math, numbers and listed terms protected by
placeholders (see protect.py); an example whose placeholders do not survive is quarantined with the reason.
Stage 2 (`dataset/<lang>`): each example gets N solved examples of the same language as prior turns, chosen at random
(seeded per example id, so shards and reruns agree) or by similarity; never the example itself."""

from __future__ import annotations

from pydantic import Field

from mlift.baselines.common import PairSource, record_rng
from mlift.baselines.protect import DEFAULT_KINDS
from mlift.data.contamination import BuildCheck
from mlift.recipe import Schema
from mlift.records import Record
from mlift.runner.pending import DEFAULT_MAX_ATTEMPTS, MaxAttempts
from mlift.translate.translators import TranslatorConfig


class ProtectConfig(Schema):
    kinds: list[str] = Field(default_factory=lambda: list(DEFAULT_KINDS),
                             description="code_block, inline_code, url, math, number")
    terms: list[str] = Field(default_factory=list, description="terms kept verbatim (names, product names...)")


class NShotConfig(Schema):
    n: int = Field(0, ge=0, description="solved examples before the real one; 0: plain pairs")
    selection: str = Field("random", pattern="^(random|similar)$")
    embedding_model: str | None = Field(None, description="sentence-transformers model for 'similar'; "
                                                          "None: character n-gram TF-IDF")


class SphinxRecipe(Schema):
    seed: int = 0
    output_dir: str
    num_shards: int = Field(2, ge=1)
    max_attempts: MaxAttempts = DEFAULT_MAX_ATTEMPTS
    source: PairSource
    target_langs: list[str] = Field(min_length=1)
    translator: TranslatorConfig
    protect: ProtectConfig = Field(default_factory=ProtectConfig)
    nshot: NShotConfig = Field(default_factory=NShotConfig)
    batch_size: int = Field(16, ge=1)
    contamination: BuildCheck | None = Field(None, description="n-gram check against eval sets, in the manifest")


def _user(rec: Record) -> str:
    return rec["messages"][-2]["content"]


class NShotStage:
    """Prepend N solved examples from `pool` (same language) as prior turns. Candidates exclude the example itself:
    the same id, the same source id and the same user text (a duplicate in the source set is the example too)."""

    one_to_one = True

    def __init__(self, name: str, pool: list[Record], n: int, seed: int = 0, selection: str = "random",
                 embedding_model: str | None = None, batch_size: int = 64):
        self.name = name
        self.pool = pool
        self.n = n
        self.seed = seed
        self.selection = selection
        self.batch_size = batch_size
        self._by_id: dict[str, list[int]] = {}
        self._by_source: dict[str, list[int]] = {}
        self._by_text: dict[str, list[int]] = {}
        for k, r in enumerate(pool):
            self._by_id.setdefault(r.id, []).append(k)
            self._by_source.setdefault(r.meta.get("source_id", r.id), []).append(k)
            self._by_text.setdefault(_user(r), []).append(k)
        self._vectors = self._embed(embedding_model) if selection == "similar" and pool else None

    def _embed(self, model: str | None):
        texts = [_user(r) for r in self.pool]
        if model:
            from sentence_transformers import SentenceTransformer

            return SentenceTransformer(model).encode(texts, normalize_embeddings=True)
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit_transform(texts)

    def excluded(self, rec: Record) -> set[int]:
        """Pool positions that are the example itself: its id, its source id, or its exact user text."""
        out = set(self._by_id.get(rec.id, ()))
        out |= set(self._by_source.get(rec.meta.get("source_id", rec.id), ()))
        out |= set(self._by_text.get(_user(rec), ()))
        return out

    def choose(self, rec: Record) -> list[Record]:
        skip = self.excluded(rec)
        want = min(self.n, len(self.pool) - len(skip))
        if want <= 0:
            return []
        if self.selection == "random":
            # Sampling positions and rejecting the few excluded ones: O(n) per example, not O(pool).
            rng = record_rng(self.seed, rec.id)
            picked: list[int] = []
            while len(picked) < want:
                j = rng.randrange(len(self.pool))
                if j not in skip and j not in picked:
                    picked.append(j)
        else:
            import numpy as np

            if rec.id not in self._by_id:
                raise KeyError(f"{rec.id} is not in the N-shot pool")
            k = self._by_id[rec.id][0]
            sims = self._vectors @ self._vectors[k].T
            sims = np.asarray(sims.todense()).ravel() if hasattr(sims, "todense") else np.asarray(sims).ravel()
            sims = sims.astype(float)
            sims[list(skip)] = -np.inf
            order = np.lexsort((np.arange(len(sims)), -sims))  # most similar first; ties: pool order
            picked = [int(j) for j in order[:want]]
        return [self.pool[j] for j in picked]

    def process(self, batch: list[Record]) -> list:
        from mlift.runner.stage import Outcome

        outcomes = []
        for rec in batch:
            shots = self.choose(rec)
            if len(shots) < self.n:
                outcomes.append(Outcome.drop(rec, "too_few_shots", f"{len(shots)} candidates for {self.n} shots"))
                continue
            prior = [m for s in shots for m in s["messages"][-2:]]
            rec.fields["messages"] = prior + rec["messages"][-2:]
            rec.meta["nshot_ids"] = [s.id for s in shots]
            rec.meta["nshot_selection"] = self.selection
            outcomes.append(Outcome.keep(rec))
        return outcomes
