"""Oracles for tests and benchmarks: a slow float64 NumPy reference of every
engine function (:mod:`~kcp.testing.reference`) and kcp networks evaluated
by PyTorch (:mod:`~kcp.testing.torch_functional`, needs torch).
"""
