"""Fixtures for the firestore tests."""
