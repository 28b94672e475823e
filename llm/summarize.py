"""Summarize a report (or the diff of two): build the prompt, stream, save as it streams, check.

The summary is in the store from the first moment (status ``streaming``) and is saved again about
once a second while text arrives, so a crash, a kill or a closed tab keeps what had arrived. It
ends ``complete``, ``stopped`` or ``failed``; a summary whose writer process died is marked
``interrupted`` by :func:`recover_summaries` at the next start-up.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from llm.client import OllamaGateway
from llm.errors import LLMError, LLMUnavailable, ModelMissing
from llm.factcheck import FactCheck, check
from llm.prompt import AUDIENCES, DEFAULT_NUM_CTX, Prompt, build_diff_prompt, build_prompt
from llm.stream import StreamJob
from scanner.diff import pair_text
from scanner.models import Report
from store.base import Store, StoreError
from store.records import Summary, new_id, pid_alive

log = logging.getLogger(__name__)

SAVE_EVERY_S = 1.0
_FINAL_STATES = {"complete": "complete", "stopped": "stopped", "failed": "failed"}

# Summaries being written by this process, so recovery never marks a live one interrupted.
_active: set[str] = set()
_active_lock = threading.Lock()


class SummaryRun:
    """One summary being streamed by a worker thread and saved as it grows."""

    def __init__(
        self,
        store: Store,
        gateway: OllamaGateway,
        summary: Summary,
        prompt: Prompt,
        reports: tuple[Report, ...],
        *,
        think: bool | None = None,
        check: Callable[[], str] | None = None,
        save_every_s: float = SAVE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.prompt = prompt
        self.reports = reports
        self.save_every_s = save_every_s
        self._clock = clock
        self._last_save: float | None = None
        self._summary = summary
        self._lock = threading.Lock()
        self._check = check
        # Set once start() has decided: the first record saved, or the run discarded. The
        # worker's saves wait for it, so the first record is never saved over a later one.
        self._decided = threading.Event()
        self._discarded = False
        self.fact_check: FactCheck | None = None
        self.job = StreamJob(
            gateway,
            summary.model,
            prompt.messages,
            prompt.options,
            think=think,
            on_progress=self._progress,
            on_finish=self._finish,
        )

    @property
    def id(self) -> str:
        """The summary's id."""
        return self._summary.id

    @property
    def summary(self) -> Summary:
        """The summary as last saved (or about to be)."""
        with self._lock:
            return self._summary

    @property
    def discarded(self) -> bool:
        """True when start() failed (or was interrupted) before anything was saved."""
        return self._discarded

    @property
    def finished(self) -> bool:
        """True once the stream ended and the final record was saved."""
        return self.job.finished

    def start(self) -> SummaryRun:
        """Send the request from a worker thread, check the model meanwhile, save the empty summary.

        The model check (``check``: the installed name, or ModelMissing / LLMUnavailable) runs
        while the request is on its way, so it adds nothing to the time to the first token. When
        it fails, the request is dropped, nothing is saved and its error is raised here.
        """
        with _active_lock:
            _active.add(self.id)
        self.job.start()
        try:
            installed = self._check() if self._check is not None else self._summary.model
        except BaseException:
            self._discarded = True
            self._decided.set()  # before stop(), which may finish the job in this thread
            self.job.stop()
            with _active_lock:
                _active.discard(self.id)
            raise
        with self._lock:
            self._summary = dataclasses.replace(self._summary, model=installed)
        try:
            self._save(status="streaming")
        finally:
            self._decided.set()
        return self

    def stop(self) -> None:
        """End the stream; what arrived is kept and the summary is marked stopped."""
        self.job.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the summary is finished and saved; False on timeout."""
        return self.job.wait(timeout)

    # -- called in the worker thread -----------------------------------------------------------
    def _save(self, **changes: Any) -> None:
        now = time.time()
        with self._lock:
            self._summary = dataclasses.replace(self._summary, updated_at=now, **changes)
            record = self._summary
        self._last_save = self._clock()
        try:
            self.store.save_summary(record)
        except StoreError:
            log.exception("could not save summary %s", record.id)

    def _progress(self, job: StreamJob) -> None:
        self._decided.wait()
        if self._discarded:
            return
        if self._last_save is None or self._clock() - self._last_save >= self.save_every_s:
            self._save(text=job.text, thinking=job.thinking, metrics=job.metrics.to_dict())

    def _finish(self, job: StreamJob) -> None:
        self._decided.wait()
        if self._discarded:
            return
        text = job.text
        self.fact_check = check(text, *self.reports)
        try:
            self._save(
                text=text,
                thinking=job.thinking,
                status=_FINAL_STATES.get(job.state, "failed"),
                error=str(job.error) if job.error else "",
                metrics=job.metrics.to_dict(),
                fact_check=self.fact_check.to_dict(),
            )
        finally:
            with _active_lock:
                _active.discard(self.id)


def prepare(
    store: Store,
    gateway: OllamaGateway,
    report_id: str,
    model: str,
    audience: str = "executive",
    *,
    base_report_id: str | None = None,
    owner: str = "",
    options: Mapping[str, Any] | None = None,
    num_ctx: int | None = None,
    think: bool | None = None,
    save_every_s: float = SAVE_EVERY_S,
) -> SummaryRun:
    """Check the inputs and build the run, without starting it.

    Raises ValueError (audience), store.base.NotFound (report), and ModelMissing or
    LLMUnavailable when the model's details cannot be read; :meth:`SummaryRun.start` checks the
    model again against the installed list, as the request goes out.
    """
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {', '.join(AUDIENCES)}, not {audience!r}")
    report = store.get_report(report_id)
    base = store.get_report(base_report_id) if base_report_id else None
    if num_ctx is None:
        num_ctx = DEFAULT_NUM_CTX
        try:
            known = gateway.show(model, cached=True).context_length
        except (ModelMissing, LLMUnavailable):
            raise
        except LLMError:
            known = None
        if known:
            num_ctx = min(num_ctx, known)
    if base is not None:
        prompt = build_diff_prompt(base, report, audience, num_ctx=num_ctx, options=options)
        reports: tuple[Report, ...] = (base, report)
    else:
        prompt = build_prompt(report, audience, num_ctx=num_ctx, options=options)
        reports = (report,)
    now = time.time()
    opts = dict(prompt.options)
    if think is not None:
        opts["think"] = think
    if prompt.omitted:
        opts["omitted"] = dict(prompt.omitted)
    summary = Summary(
        id=new_id("sum"),
        report_id=report.id,
        base_report_id=base.id if base else None,
        compares=pair_text(base, report) if base else "",
        model=model,  # the installed name once start() has checked it
        audience=audience,
        prompt_version=prompt.version,
        options=opts,
        status="streaming",
        owner=owner,
        created_at=now,
        updated_at=now,
        writer_pid=os.getpid(),
        writer_machine=store.host.machine_id,
        writer_boot=store.host.boot_id,
    )
    return SummaryRun(
        store,
        gateway,
        summary,
        prompt,
        reports,
        think=think,
        check=lambda: gateway.require_model(model),
        save_every_s=save_every_s,
    )


def summarize(
    store: Store, gateway: OllamaGateway, report_id: str, model: str, **kw: Any
) -> SummaryRun:
    """Prepare and start a summary; see :func:`prepare` for the arguments and errors."""
    return prepare(store, gateway, report_id, model, **kw).start()


def recover_summaries(store: Store, alive: Callable[[int], bool] = pid_alive) -> list[str]:
    """Mark ``interrupted`` every streaming summary whose writer is gone; return their ids.

    Only this machine's summaries are judged (another machine sharing the store recovers its
    own); one written in an earlier boot of this machine is gone whatever its pid says now.
    """
    me = os.getpid()
    host = store.host
    with _active_lock:
        active = set(_active)
    marked: list[str] = []
    for s in store.list_summaries():
        if s.status != "streaming" or s.id in active:
            continue
        if not host.same_machine(s.writer_machine):
            continue
        pid = s.writer_pid
        this_boot = host.same_boot(s.writer_machine, s.writer_boot)
        if this_boot and pid is not None and pid != me and alive(pid):
            continue
        store.save_summary(
            dataclasses.replace(
                s,
                status="interrupted",
                error="The program writing this summary stopped before it finished; "
                "the text that had arrived is kept.",
                updated_at=time.time(),
            )
        )
        marked.append(s.id)
    if marked:
        log.warning("marked %d summaries interrupted: %s", len(marked), ", ".join(marked))
    return marked
