"""Test support code shared by the test modules (proxies, fixtures, helpers); not shipped."""
