"""Normandy's tests. A package (as are ``core`` and ``cli``), so that a test module can have
the name of the code it mirrors in both folders: ``core/test_report.py`` and
``cli/test_report.py``."""
