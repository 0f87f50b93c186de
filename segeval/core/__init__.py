"""Statistics and metrics: pure functions of arrays and of merged statistics (no file I/O)."""
