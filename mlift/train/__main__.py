"""`python -m mlift.train RECIPE` (what `accelerate launch -m mlift.train` and slurm/train.sbatch run)."""

from mlift.commands.train import module_main

raise SystemExit(module_main())
