"""Readers and name maps for the weight layouts that models/convert.py accepts."""
