"""Test support shared by the suites (on the path through pytest's ``pythonpath``)."""
