"""Benchmarks that give evidence for claims Driftline makes (run with ``python -m benchmarks.<name>``)."""
