"""The business: one sub-package per domain, each deployable as its own Lambda.

A domain package `domains/<name>/` holds `contracts.py` (the events it publishes, the only
module other domains may import) and `app.py` (its `Domain` with handlers and routes).
"""
