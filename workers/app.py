"""The Celery app both sides build from the broker URL: JSON only, a queue per site.

Nothing on this broker is ever unpickled: tasks, results and events are JSON, and a message of
any other content type is refused before it is decoded. Results are not kept in Redis; a job's
state and report live in the shared store.
"""

from __future__ import annotations

from celery import Celery

from workers.settings import Broker

TASK_SCAN = "scanscribe.scan"
# A message a dead worker held comes back after this long; the ledger makes that harmless.
VISIBILITY_TIMEOUT_S = 300
BROKER_TIMEOUT_S = 3.0


def queue_for(site: str) -> str:
    """The Celery queue of one site's workers."""
    return f"scanscribe.site.{site}"


def make_app(broker: Broker) -> Celery:
    """A Celery app on ``broker`` that accepts JSON and nothing else."""
    app = Celery("scanscribe", broker=broker.url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        # Acknowledged when the scan ends: a message a worker dies holding is delivered again.
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        task_create_missing_queues=True,
        task_default_queue="scanscribe.unrouted",
        control_exchange="scanscribe",
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_channel_error_retry=True,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            "socket_timeout": BROKER_TIMEOUT_S,
            "socket_connect_timeout": BROKER_TIMEOUT_S,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=True,
    )
    return app
