"""Tests of the cephfs_volumed Python shim.

A package, so that this conftest is imported as ``tests.conftest`` and does not
shadow the ``conftest`` module other suites (Tests/interop) import by name.
"""
