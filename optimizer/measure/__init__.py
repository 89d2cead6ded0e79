"""Measuring variants with LiteRT: runtime, op audit, accuracy and fidelity, latency, statistics."""
