"""Baseline dataset builders (Bactrian-X translated Alpaca, xP3/Aya templated NLP data, sPhinX selective translation).

Every builder writes chat records `{"id", "lang", "messages": [...], "meta"}` through the sharded runner, under
`<output_dir>/dataset/<lang>/shard-*.jsonl`, which TRL's SFTTrainer trains on directly."""
