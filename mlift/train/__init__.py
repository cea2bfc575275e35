"""SFT training with TRL: the entry (sft.py, `python -m mlift.train`), its data, chat templates, checkpoints, FSDP, Slurm."""
