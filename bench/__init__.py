"""Benchmarks: each runs the project and its baseline in the same run and prints the ratio."""
