"""Hybrid quantum/classical sparse training in segments (ALGORITHM.md §8): upload, emulated
QLSA, tomography download and re-upload, against a classical baseline on the same batches."""
