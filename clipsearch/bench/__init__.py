"""Benchmarks: vector index designs, moment-index designs, ingest and text speed, the
load-test store, and what they share (``common``)."""
