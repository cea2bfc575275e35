"""Comparison tables, averages, statistics, references, the judge report and the HTML page."""
