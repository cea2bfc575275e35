"""`python -m mlift.train RECIPE` (what `accelerate launch -m mlift.train` and slurm/train.sbatch run)."""

from mlift.train.sft import main

raise SystemExit(main())
