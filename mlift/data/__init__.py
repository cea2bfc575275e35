"""Data that stages read: hub datasets, conversation sources, corpus documents, shards, text, mixtures, contamination."""
