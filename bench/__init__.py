"""Benchmarks of flask_migrate_alt against Flask-Migrate 4.1.

Run ``python -m bench`` (or ``python -m bench --quick``) from the root of a
checkout; ``docs/benchmarks.rst`` describes the workloads and how to read the
results.

This module imports nothing: the measuring child processes import
``bench/child.py`` by path, and nothing else of this package.
"""
