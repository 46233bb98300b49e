"""The test harness on real systems: chroots, the signed repository, Apache on loopback, timings.

Shared by the integration tests (through tests/conftest.py) and by the demo
(`python3 -m tests.support.demo`); nothing here needs pytest.
"""
