"""Scanner workers: scans sent over a Redis broker to Celery workers, one queue per site.

The dashboard and the command line keep talking to the ``JobRunner`` interface; with
``SCANSCRIBE_BROKER`` set, :class:`workers.dispatch.BrokerRunner` stands behind it. Only ids and
validated values cross the broker, as JSON: each worker checks every target against its own
scope and builds nmap's argv from its own profile table (``LocalRunner.adopt``).

Modules::

    settings   SCANSCRIBE_BROKER and the worker's site name, validated
    app        the Celery app (JSON only, late acknowledgement, a queue per site)
    ledger     Redis keys beside the queues: each job's attempt, run claims, leases, re-queues
    board      worker heartbeats in the shared store (SQLite table or Firestore collection)
    routing    which live site's scope holds every target
    dispatch   BrokerRunner, the dashboard's side
    worker     the task and the worker process (heartbeats, lease renewal and the reaper)
"""
