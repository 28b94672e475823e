"""Offline vulnerability feeds: NVD CVE JSON 2.0 files and CISA's Known Exploited catalog.

The user brings the files (``python -m scanner feeds import FILE``); nothing is ever fetched.
Services that ``-sV`` identified are matched against the feeds' affected CPE ranges, and each
match is a version guess to verify, kept apart from the CVEs the scan's own scripts reported.
The package never imports streamlit.
"""

from __future__ import annotations

import time
from pathlib import Path

from config import Config
from feeds.models import FeedImport, FeedRefused
from feeds.parse import MAX_FEED_BYTES, load_feed
from feeds.storage import FeedStore, SQLiteFeedStore


def open_feed_store(cfg: Config) -> FeedStore:
    """The feeds' store beside the main one: Firestore when selected, else the SQLite file."""
    if cfg.store == "firestore":
        from feeds.firestore_storage import FirestoreFeedStore

        return FirestoreFeedStore.from_config(cfg)
    return SQLiteFeedStore(cfg.db_path)


def import_file(store: FeedStore, path: Path, now: float | None = None) -> FeedImport:
    """Check one feed file and keep it, or raise FeedRefused having stored nothing."""
    try:
        size = path.stat().st_size
        if size > MAX_FEED_BYTES:
            raise FeedRefused(
                f"{path.name} is {size / 1048576:.0f} MiB, over the {MAX_FEED_BYTES // 1048576} "
                "MiB limit for a feed file; import the NVD feed a year at a time. Nothing was "
                "stored."
            )
        data = path.read_bytes()
    except OSError as exc:
        raise FeedRefused(f"Cannot read {path}: {exc.strerror}. Nothing was stored.") from None
    feed = load_feed(data)
    return store.import_feed(feed, path.name, time.time() if now is None else now)
