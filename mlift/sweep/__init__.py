"""`mlift sweep`: a grid (datasets x models x seeds x override axes) -> a DAG of jobs -> run on Slurm or here.

Like datatrove's pipeline / executor split: `schema` (the sweep recipe, the data-command table), `graph` (grid
expansion into the job DAG; the only place jobs and their `afterok` edges are decided), `jobs` (a job, its hash and
completion markers), `scripts` (rendering slurm/job.sbatch), and two executors on the same scripts: `slurm`
(sbatch + afterok) and `local` (bash, in order); `state` reads job states back for `--status`.
"""

from mlift.sweep.graph import expand
from mlift.sweep.jobs import MARKER, Job
from mlift.sweep.local import run_local
from mlift.sweep.rehearsal import load_sweep
from mlift.sweep.schema import DATA_COMMANDS, SlurmOpts, SweepRecipe
from mlift.sweep.scripts import render, write_manifest, write_scripts
from mlift.sweep.slurm import submit, wait
from mlift.sweep.sources import data_sources
from mlift.sweep.state import status

__all__ = ["DATA_COMMANDS", "MARKER", "Job", "SlurmOpts", "SweepRecipe", "data_sources", "expand", "load_sweep",
           "render", "run_local", "status", "submit", "wait", "write_manifest", "write_scripts"]
