"""Natural multilingual IFT data from monolingual corpora (DESIGN.md 1.1): five stages, each its own module.

fragments (+ global dedup) -> to_english -> instruct -> score (+ global diversity selection) -> to_target.
`mlift.generate.pipeline.run_pipeline` runs them per language on the sharded, resumable runner.
"""
