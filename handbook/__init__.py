"""The handbook's command line: fill and check model cards and runbooks, score readiness.

Run it from the repository root as `python -m handbook --help`.
"""
