"""Benchmarks of the JobMojito provider; run them with ``make bench`` (``python -m benchmarks.run``)."""
