"""Benchmarks: `python -m bench` runs them side by side with their peers and writes RESULTS.md."""
