"""mlift: multilingual instruction fine-tuning experiments, from data generation to comparison tables."""

__version__ = "0.1.0"
