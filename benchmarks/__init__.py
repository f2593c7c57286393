"""Benchmark tooling for kkobot: signing helpers, a bare echo baseline, a load generator and drivers."""
