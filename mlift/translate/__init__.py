"""Translation: translators behind one interface (NLLB-style seq2seq, an LLM few-shot or chat), and the runner stage
that translates record fields (`mlift translate`, the generate pipeline, the baselines)."""
