"""Fixtures for the scanner tests."""
