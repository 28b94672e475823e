"""The feeds in Firestore, through the same firebase_admin app as the main store.

Collections ``feeds_cves`` (one document per CVE, its ranges inside it and the products they
name in ``products`` for ``array_contains`` lookups), ``feeds_kev`` (one per catalog entry) and
``feeds_imports``. A file is checked whole before the first write, so a refused file writes
nothing; the writes go in batches, and a connection lost half-way leaves a partial import that
importing the same file again completes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from config import Config
from feeds.match import Product
from feeds.models import CpeRange, CveRecord, FeedImport
from feeds.parse import Feed
from store.firestore import client_factory, google_errors

CVES, KEV, IMPORTS = "feeds_cves", "feeds_kev", "feeds_imports"
BATCH = 400  # Firestore takes at most 500 writes per batch
_RANGE_FIELDS = tuple(f.name for f in dataclasses.fields(CpeRange))


def _product_key(part: str, vendor: str, product: str) -> str:
    return f"{part}:{vendor}:{product}"


class FirestoreFeedStore:
    """FeedStore on Firestore."""

    def __init__(self, make_client: Callable[[], Any], timeout_s: float = 10.0) -> None:
        self._client = make_client()
        self.timeout_s = timeout_s

    @classmethod
    def from_config(cls, cfg: Config) -> FirestoreFeedStore:
        """The store for ``cfg`` (SCANSCRIBE_STORE=firestore), on the app's firebase_admin app."""
        return cls(client_factory(cfg), cfg.firestore_timeout_s)

    def _translate(self, what: str) -> contextlib.AbstractContextManager[None]:
        return google_errors(what, "import the file again to complete it.")

    def _col(self, name: str) -> Any:
        return self._client.collection(name)

    def _write(self, ops: Iterable[tuple[str, str, dict[str, Any] | None]], what: str) -> None:
        """Set (or, for None, delete) documents, a batch at a time."""
        with self._translate(what):
            batch, n = self._client.batch(), 0
            for coll, doc_id, body in ops:
                ref = self._col(coll).document(doc_id)
                if body is None:
                    batch.delete(ref)
                else:
                    batch.set(ref, body)
                n += 1
                if n == BATCH:
                    batch.commit(timeout=self.timeout_s)
                    batch, n = self._client.batch(), 0
            if n:
                batch.commit(timeout=self.timeout_s)

    def _ids(self, coll: str) -> list[str]:
        # A projection on one small field: the ids without the bodies.
        query = self._col(coll).select(["__name__"])
        with self._translate("list feed records"):
            return [snap.id for snap in query.stream(timeout=self.timeout_s)]

    def import_feed(self, feed: Feed, name: str, now: float) -> FeedImport:
        """Keep a checked feed file (already whole), in batches."""
        ops: list[tuple[str, str, dict[str, Any] | None]]
        if feed.kind == "nvd":
            ops = [
                (
                    CVES,
                    c.id,
                    {
                        "cvss": c.cvss,
                        "published": c.published,
                        "description": c.description,
                        "products": sorted(
                            {_product_key(r.part, r.vendor, r.product) for r in c.ranges}
                        ),
                        "ranges": [dataclasses.asdict(r) for r in c.ranges],
                    },
                )
                for c in feed.cves
            ]
        else:
            keep = {k.cve_id for k in feed.kev}
            ops = [(KEV, old, None) for old in self._ids(KEV) if old not in keep]
            ops += [(KEV, k.cve_id, dataclasses.asdict(k)) for k in feed.kev]
        done = FeedImport(feed.kind, name, feed.version, feed.count, now)
        ops.append((IMPORTS, f"{now:.6f}-{feed.kind}", dataclasses.asdict(done)))
        self._write(ops, "save the feed")
        return done

    def imports(self) -> list[FeedImport]:
        """Every import, newest first."""
        with self._translate("list feed imports"):
            docs = [s.to_dict() for s in self._col(IMPORTS).stream(timeout=self.timeout_s)]
        rows = [FeedImport(**d) for d in docs]
        return sorted(rows, key=lambda r: r.imported_at, reverse=True)

    def counts(self) -> dict[str, int]:
        """How many CVEs, ranges and known-exploited entries are kept."""
        with self._translate("count feed records"):
            ranges = sum(
                len(s.to_dict().get("ranges") or ())
                for s in self._col(CVES).stream(timeout=self.timeout_s)
            )
        return {"cves": len(self._ids(CVES)), "ranges": ranges, "kev": len(self._ids(KEV))}

    def ranges_for(self, products: Iterable[Product]) -> list[CpeRange]:
        """Every vulnerable range of these (part, vendor, product) triples."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        out: list[CpeRange] = []
        for part, vendor, product in set(products):
            key = _product_key(part, vendor, product)
            query = self._col(CVES).where(filter=FieldFilter("products", "array_contains", key))
            with self._translate("read the feeds"):
                docs = [s.to_dict() for s in query.stream(timeout=self.timeout_s)]
            for d in docs:
                for r in d.get("ranges") or ():
                    rng = CpeRange(**{k: r.get(k, "") for k in _RANGE_FIELDS})
                    if (rng.part, rng.vendor, rng.product) == (part, vendor, product):
                        out.append(rng)
        return out

    def _get_all(self, coll: str, ids: Iterable[str]) -> list[Any]:
        refs = [self._col(coll).document(i) for i in set(ids)]
        if not refs:
            return []
        with self._translate("read the feeds"):
            return [s for s in self._client.get_all(refs, timeout=self.timeout_s) if s.exists]

    def cves(self, ids: Iterable[str]) -> dict[str, CveRecord]:
        """The stored CVEs among ``ids`` (without their ranges)."""
        out: dict[str, CveRecord] = {}
        for snap in self._get_all(CVES, ids):
            d = snap.to_dict()
            out[snap.id] = CveRecord(
                snap.id, d.get("cvss"), d.get("published", ""), d.get("description", "")
            )
        return out

    def known_exploited(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` in the Known Exploited Vulnerabilities catalog."""
        return {snap.id for snap in self._get_all(KEV, ids)}

    def close(self) -> None:
        """The client needs no closing."""
