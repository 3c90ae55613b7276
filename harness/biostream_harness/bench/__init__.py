"""Benchmarks on the real broker (commands, not tests): ``python -m biostream_harness.bench.<name>``."""
