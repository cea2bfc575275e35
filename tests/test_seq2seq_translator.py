"""Seq2seq MT translators via transformers, on tiny models built here (NLLB-style M2M100 with language tokens,
MADLAD-style T5 with <2xx> prefixes): the language-code plumbing, batching and the cache are real."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS

from mlift.llm.cache import RequestCache
from mlift.translate.translators import Seq2SeqTranslator, Seq2SeqTranslatorConfig

LANG_TOKENS = ["eng_Latn", "fra_Latn", "deu_Latn", "<2en>", "<2de>", "<2fr>"]


def tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>", "<s>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   bos_token="<s>", additional_special_tokens=LANG_TOKENS)
    fast.save_pretrained(out)
    return fast


@pytest.fixture(scope="module")
def nllb_like(tmp_path_factory) -> Path:
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    out = tmp_path_factory.mktemp("nllb")
    tok = tokenizer(out)
    torch.manual_seed(0)
    cfg = M2M100Config(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
                       decoder_start_token_id=tok.eos_token_id)
    M2M100ForConditionalGeneration(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def madlad_like(tmp_path_factory) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    out = tmp_path_factory.mktemp("madlad")
    tok = tokenizer(out)
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    return out


def test_nllb_family_forces_the_target_language_token(nllb_like, tmp_path):
    cfg = Seq2SeqTranslatorConfig(kind="seq2seq", model=str(nllb_like), family="nllb", max_new_tokens=6, batch_size=2)
    tr = Seq2SeqTranslator(cfg, RequestCache(tmp_path / "c.sqlite"))
    from mlift.languages import get_language

    src_lang, forced, prefix = tr._codes(get_language("fr"), get_language("de"))
    assert (src_lang, forced, prefix) == ("fra_Latn", "deu_Latn", "")
    texts = ["Tous les êtres humains naissent libres.", "Bonjour.", "Merci beaucoup."]
    outs = tr.translate(texts, "fr", "de")
    # random weights never say EOS within 6 tokens: every output is cut, and flagged as such (never passed on)
    assert len(outs) == 3 and all(o.error.startswith("translation_truncated") for o in outs)
    assert tr.counters["completion_tokens"] > 0 and tr.counters["truncated"] == 3
    with pytest.raises(ValueError, match="no language token"):
        tr.translate(["x"], "fr", "hi")


@pytest.fixture(scope="module")
def marian_like(tmp_path_factory) -> Path:
    """A Marian model that always ends after 3 tokens: its output bias favours EOS, its generation config (saved with
    it, as real checkpoints ship one) holds EOS back for 3 tokens; Marian's config forces EOS at the length limit."""
    import torch
    from transformers import GenerationConfig, MarianConfig, MarianMTModel

    out = tmp_path_factory.mktemp("marian")
    tok = tokenizer(out)
    torch.manual_seed(0)
    cfg = MarianConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                       decoder_start_token_id=tok.pad_token_id, forced_eos_token_id=tok.eos_token_id)
    model = MarianMTModel(cfg)
    with torch.no_grad():
        model.final_logits_bias[0, tok.all_special_ids] = -100.0
        model.final_logits_bias[0, tok.eos_token_id] = 50.0
    model.generation_config = GenerationConfig(min_new_tokens=3, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id, decoder_start_token_id=tok.pad_token_id,
                                               forced_eos_token_id=tok.eos_token_id)
    model.save_pretrained(out)
    return out


TEXT = "Tous les êtres humains naissent libres. Ils sont doués de raison.\nNul ne sera tenu en esclavage !\n\n" \
       "Toute personne a droit à l'éducation. L'éducation doit être gratuite. Elle est obligatoire."


def test_seq2seq_translates_sentence_by_sentence_and_keeps_line_breaks(marian_like, tmp_path):
    """Six sentences on three lines (one blank line between): six requests, every sentence's own translation in
    place, separators (spaces, line breaks) verbatim. One request for the whole text would have been cut at 8 tokens."""
    from mlift.translate.translators import split_units

    cfg = Seq2SeqTranslatorConfig(kind="seq2seq", model=str(marian_like), max_new_tokens=8, batch_size=4)
    tr = Seq2SeqTranslator(cfg, RequestCache(tmp_path / "c.sqlite"))
    assert tr.family == "marian"
    [out] = tr.translate([TEXT], "fr", "en")
    assert out.ok, out.error
    assert tr.counters["sentences"] == 6 and tr.counters["truncated"] == 0
    units = split_units(TEXT)
    assert "".join(units) == TEXT and units[1::2][2] == "Nul ne sera tenu en esclavage !"
    alone = tr.translate(units[1::2], "fr", "en")  # each sentence on its own: all from the cache now
    assert all(o.cached for o in alone)
    expect = "".join(u if k % 2 == 0 else alone[k // 2].text for k, u in enumerate(units))
    assert out.text == expect.strip()
    assert [line == "" for line in out.text.split("\n")] == [False, False, True, False]
    assert out.text.split("\n")[0] == f"{alone[0].text} {alone[1].text}"


def test_seq2seq_output_at_max_new_tokens_is_flagged_and_dropped(marian_like, nllb_like):
    """Cut outputs fail with translation_truncated, and the translate stage drops them with that reason (counted),
    for a forced-EOS model (Marian: EOS at the limit) and for a model that never reached EOS (M2M100/NLLB)."""
    from mlift.records import Record
    from mlift.translate.stage import TranslateStage

    for path, family in ((marian_like, "marian"), (nllb_like, "nllb")):
        cfg = Seq2SeqTranslatorConfig(kind="seq2seq", model=str(path), family=family, max_new_tokens=3, cache=False)
        tr = Seq2SeqTranslator(cfg)
        outs = tr.translate([TEXT, "Bonjour."], "fr", "de")
        assert all(not o.ok and o.error.startswith("translation_truncated") for o in outs), outs
        stage = TranslateStage("to_english", tr, {"fragment": "fragment_en"}, tgt="deu_Latn")
        res = stage.process([Record("a", "fra_Latn", {"fragment": TEXT}, {})])
        assert [(o.kind, o.reason) for o in res] == [("drop", "translation_truncated")]
        assert "fragment_en" not in res[0].record.fields
    ok = Seq2SeqTranslator(Seq2SeqTranslatorConfig(kind="seq2seq", model=str(marian_like), max_new_tokens=5,
                                                   cache=False)).translate(["Bonjour."], "fr", "en")
    assert ok[0].ok  # 3 tokens + EOS fit in 5: not flagged  # hin_Deva is not in this model's vocabulary


def test_madlad_family_prefixes_the_target(madlad_like):
    cfg = Seq2SeqTranslatorConfig(kind="seq2seq", model=str(madlad_like), max_new_tokens=5, cache=False)
    tr = Seq2SeqTranslator(cfg)
    assert tr.family == "madlad"  # detected from the T5 architecture
    from mlift.languages import get_language

    assert tr._codes(get_language("fr"), get_language("en")) == (None, None, "<2en> ")
    outs = tr.translate(["Bonjour.", ""], "fr", "en")
    assert outs[1].error == "empty source text"


def test_stage5_drops_a_back_translation_that_is_not_in_the_target_language(marian_like, shared_dir):
    """Stage 5 checks the translated instruction with the fragments stage's lang-ID: real Spanish passes; English (what
    the demo's Spanish set held) and a translator's garbage are dropped with instruction_not_in_target_language."""
    from mlift.generate.config import LangIDConfig
    from mlift.generate.to_target import NOT_IN_L, TargetLanguageCheck, ToTargetStage
    from mlift.records import Record

    flores = shared_dir / "data" / "flores200" / "devtest"
    spa = (flores / "spa_Latn.devtest").read_text(encoding="utf-8").splitlines()[:100]
    eng = (flores / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()[:100]
    check = TargetLanguageCheck("spa_Latn", LangIDConfig())
    assert sum(check(x)[0] is None for x in spa) >= 95
    assert sum(check(x)[0] is not None and check(x)[0][0] == NOT_IN_L for x in eng) >= 95
    assert check("Describe the main features of the Spanish constitution.")[0][0] == NOT_IN_L
    assert check("Describe las principales características de la constitución española.")[0] is None
    assert TargetLanguageCheck("spa_Latn", LangIDConfig(enabled=False))(eng[0]) == (None, None)
    assert TargetLanguageCheck("spa_Latn", LangIDConfig(check_instruction=False))(eng[0]) == (None, None)

    tr = Seq2SeqTranslator(Seq2SeqTranslatorConfig(kind="seq2seq", model=str(marian_like), max_new_tokens=8, cache=False))
    stage = ToTargetStage(tr, "spa_Latn", langid=LangIDConfig())
    instruction = "Explain what the researchers found."  # short: the tiny model has 128 positions
    rec = Record("r0", "spa_Latn", {"instruction_en": instruction, "fragment": spa[0], "fragment_en": eng[0]}, {})
    [out] = stage.process([rec])
    assert (out.kind, out.reason) == ("drop", NOT_IN_L), (out.kind, out.reason, out.record.fields)
