"""Seq2seq MT translators via transformers, on tiny models built here (NLLB-style M2M100 with language tokens,
MADLAD-style T5 with <2xx> prefixes): the language-code plumbing, batching and the cache are real."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS

from mlift.llm.cache import RequestCache
from mlift.translate import Seq2SeqTranslator, Seq2SeqTranslatorConfig

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
    assert len(outs) == 3 and all(o.ok or o.error == "empty translation" for o in outs)
    assert tr.counters["completion_tokens"] > 0
    again = tr.translate(texts[::-1], "fr", "de")  # other order, other batches: all from the cache
    assert [o.text for o in again] == [o.text for o in outs][::-1]
    assert all(o.cached for o in again if o.ok)
    with pytest.raises(ValueError, match="no language token"):
        tr.translate(["x"], "fr", "hi")  # hin_Deva is not in this model's vocabulary


def test_madlad_family_prefixes_the_target(madlad_like):
    cfg = Seq2SeqTranslatorConfig(kind="seq2seq", model=str(madlad_like), max_new_tokens=5, cache=False)
    tr = Seq2SeqTranslator(cfg)
    assert tr.family == "madlad"  # detected from the T5 architecture
    from mlift.languages import get_language

    assert tr._codes(get_language("fr"), get_language("en")) == (None, None, "<2en> ")
    outs = tr.translate(["Bonjour.", ""], "fr", "en")
    assert outs[1].error == "empty source text"
