"""Mapping per-image kernels over work items, in this process or in a pool of processes."""
