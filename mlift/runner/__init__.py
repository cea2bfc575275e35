"""Running a stage over shards: atomic outputs, completion markers, resume, quarantine, pending retries."""
