"""Persistence for ScanScribe: the Store protocol, its SQLite default and its Firestore backend."""

from store.base import NotFound, Store, StoreError, StoreUnavailable
from store.records import Comparison, Job, Summary, new_id

__all__ = [
    "Comparison",
    "Job",
    "NotFound",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Summary",
    "new_id",
]
