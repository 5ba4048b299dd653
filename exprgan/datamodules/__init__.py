"""Data: unpaired pair sampling and per-dataset DataModules."""
