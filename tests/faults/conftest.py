"""Crashes, outages and storage faults against real servers and databases."""
