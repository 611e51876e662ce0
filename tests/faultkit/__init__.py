"""Fault-test kit: a recording upstream, a bounded load generator, a gateway process.

Importable from tests because pyproject puts ``tests`` on ``pythonpath``. Nothing here
asserts; tests do, with ``ledger.check`` counting every 250 against the upstream.
"""
