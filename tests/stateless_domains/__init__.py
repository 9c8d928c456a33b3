"""Domains only the suite loads: a platform mechanism that no domain of the business uses
today is tested on one of these, found by `domains.load` once `stateless_domains()` (in
tests/adapters/lambda_/conftest.py) adds this folder to the `domains` package's path."""
