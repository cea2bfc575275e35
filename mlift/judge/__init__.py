"""Answers to an instruction set, and the pairwise judge that compares two models' answers."""
