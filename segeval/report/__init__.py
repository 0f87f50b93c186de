"""Turning results into tables and files (terminal table, JSON, CSV)."""
