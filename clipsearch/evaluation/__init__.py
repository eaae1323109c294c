"""Evaluation drivers: retrieval metrics, moment retrieval, score calibration and the
parity of fast paths against fp32."""
