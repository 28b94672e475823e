"""Model comparisons: 2–4 models answer the same prompt at once, each scored against the scan.

Every model gets the same messages, options and seed. Each answer streams in its own worker thread
(a :class:`~llm.stream.StreamJob`), so a slow model never holds up a fast one, and each can be
stopped alone. A coordinator thread optionally warms the models up first (so that load time,
recorded apart, does not skew the timings), starts the streams together, and when the last one
ends adds the fact check and the coverage of each answer and saves the comparison. Nothing here
touches Streamlit: a page reads :meth:`ComparisonRun.lanes` and renders.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from llm import factcheck
from llm.client import ModelInfo, OllamaGateway, RunningModel, same_model
from llm.errors import LLMError, LLMTimeout, LLMUnavailable, ModelMissing
from llm.prompt import AUDIENCES, Prompt, build_diff_prompt, build_prompt
from llm.stream import StreamJob
from scanner.diff import ChangeEntry, PortEntry, diff_reports
from scanner.models import Host, Port, Report
from scanner.risk import port_risk
from store.base import Store, StoreError
from store.records import Comparison, new_id

log = logging.getLogger(__name__)

MIN_MODELS = 2
MAX_MODELS = 4
TIE = "tie"
HIGH_RISK = ("critical", "high")
SAVE_EVERY_S = 1.0
ENDED = ("complete", "stopped", "failed")
# Ollama keeps at most 3 models loaded per GPU (3 on CPU) unless OLLAMA_MAX_LOADED_MODELS says.
OLLAMA_DEFAULT_MAX_LOADED = 3


class ComparisonRefused(ValueError):
    """The comparison cannot start as asked (model count, duplicates, audience, verdict)."""


# -- what is compared -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Subject:
    """The report the models summarize, or the diff from ``base`` to ``report``."""

    report: Report
    base: Report | None = None

    @property
    def reports(self) -> tuple[Report, ...]:
        """Every report whose facts may support a claim."""
        return (self.report,) if self.base is None else (self.base, self.report)

    def prompt(self, audience: str, options: Mapping[str, Any] | None = None) -> Prompt:
        """The one prompt every model of the comparison receives."""
        if audience not in AUDIENCES:
            raise ComparisonRefused(f"Audience {audience!r} is not one of: {', '.join(AUDIENCES)}.")
        if self.base is None:
            return build_prompt(self.report, audience, options=options)
        return build_diff_prompt(self.base, self.report, audience, options=options)


def load_subject(store: Store, report_id: str, base_id: str | None = None) -> Subject:
    """The subject from the store; NotFound names the missing report."""
    report = store.get_report(report_id)
    base = store.get_report(base_id) if base_id else None
    return Subject(report, base)


def check_models(models: Sequence[str], installed: Sequence[ModelInfo] | None = None) -> list[str]:
    """The chosen models, validated: 2–4 distinct names, each installed when ``installed`` given.

    Returns the installed spelling of each name; raises ComparisonRefused or ModelMissing.
    """
    names = [m.strip() for m in models if m.strip()]
    if not MIN_MODELS <= len(names) <= MAX_MODELS:
        raise ComparisonRefused(
            f"A comparison needs {MIN_MODELS} to {MAX_MODELS} models; {len(names)} given."
        )
    for i, a in enumerate(names):
        for b in names[:i]:
            if same_model(a, b):
                raise ComparisonRefused(f"The model {a!r} is chosen twice; pick distinct models.")
    if installed is None:
        return names
    resolved = []
    for name in names:
        match = next((m.name for m in installed if same_model(m.name, name)), None)
        if match is None:
            raise ModelMissing(name)
        resolved.append(match)
    return resolved


# -- capacity -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """What the Ollama server allows, when the operator tells us (its environment is not visible).

    ``max_loaded`` mirrors OLLAMA_MAX_LOADED_MODELS, ``num_parallel`` OLLAMA_NUM_PARALLEL, and
    ``memory_bytes`` the memory Ollama may use for models (VRAM, or RAM on a CPU-only server).
    """

    max_loaded: int | None = None
    num_parallel: int | None = None
    memory_bytes: int | None = None


def limits_from_env(env: Mapping[str, str]) -> Limits:
    """Read OLLAMA_MAX_LOADED_MODELS, OLLAMA_NUM_PARALLEL and SCANSCRIBE_OLLAMA_MEMORY_GB if set.

    They describe the Ollama server; they are only right here when the operator set them for
    ScanScribe too (for example in secrets.toml). Unreadable values are ignored.
    """

    def positive(name: str) -> float | None:
        try:
            value = float(env.get(name, "").strip())
        except ValueError:
            return None
        return value if value > 0 else None

    loaded = positive("OLLAMA_MAX_LOADED_MODELS")
    parallel = positive("OLLAMA_NUM_PARALLEL")
    memory = positive("SCANSCRIBE_OLLAMA_MEMORY_GB")
    return Limits(
        max_loaded=int(loaded) if loaded else None,
        num_parallel=int(parallel) if parallel else None,
        memory_bytes=int(memory * 1e9) if memory else None,
    )


@dataclass(frozen=True)
class Capacity:
    """Whether Ollama can serve the chosen models at the same time, and why not."""

    ok: bool
    reasons: tuple[str, ...] = ()  # each one alone means the answers would come one by one
    notes: tuple[str, ...] = ()  # assumptions and things worth knowing
    loaded: tuple[str, ...] = ()  # what /api/ps showed


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def assess_capacity(
    models: Sequence[str],
    installed: Sequence[ModelInfo],
    running: Sequence[RunningModel],
    limits: Limits,
) -> Capacity:
    """Decide from /api/tags, /api/ps and the known limits whether the models fit at once."""
    reasons: list[str] = []
    notes: list[str] = []
    loaded = [r.name for r in running]
    chosen_loaded = [m for m in models if any(same_model(m, r) for r in loaded)]
    others = [r for r in loaded if not any(same_model(m, r) for m in models)]
    to_load = [m for m in models if m not in chosen_loaded]

    max_loaded = limits.max_loaded
    if max_loaded is None:
        if len(models) > OLLAMA_DEFAULT_MAX_LOADED:
            notes.append(
                f"Ollama's default limit is {OLLAMA_DEFAULT_MAX_LOADED} loaded models per GPU "
                f"(and {OLLAMA_DEFAULT_MAX_LOADED} on a CPU-only server); {len(models)} models "
                "run at once only if OLLAMA_MAX_LOADED_MODELS on the server is at least "
                f"{len(models)}."
            )
    elif len(models) > max_loaded:
        reasons.append(
            f"Ollama keeps at most {max_loaded} model(s) loaded (OLLAMA_MAX_LOADED_MODELS="
            f"{max_loaded}), so {len(models)} models cannot be in memory together: Ollama would "
            "unload and load them in turn and answer them one after another. Choose at most "
            f"{max_loaded} models, or raise OLLAMA_MAX_LOADED_MODELS on the server."
        )
    elif to_load and others and len(others) + len(models) > max_loaded:
        reasons.append(
            f"Ollama already holds {len(others)} other model(s) ({', '.join(others)}) and keeps "
            f"at most {max_loaded} (OLLAMA_MAX_LOADED_MODELS={max_loaded}). To load "
            f"{', '.join(to_load)} it must unload some first; while they serve other requests "
            "the new models wait, so the answers would not run side by side."
        )

    if limits.memory_bytes is not None:
        sizes: dict[str, int] = {}
        for m in models:
            run = next((r for r in running if same_model(r.name, m)), None)
            info = next((i for i in installed if same_model(i.name, m)), None)
            sizes[m] = run.size if run is not None else (info.size if info else 0)
        need = sum(sizes.values())
        if need > limits.memory_bytes:
            reasons.append(
                f"The chosen models need about {_gb(need)} together ("
                + ", ".join(f"{m} {_gb(s)}" for m, s in sizes.items())
                + f") but Ollama has about {_gb(limits.memory_bytes)} for models: they cannot "
                "all stay loaded, so Ollama would answer them one after another. Choose smaller "
                "models or fewer of them."
            )
        else:
            busy = sum(r.size for r in running if r.name in others)
            if busy and need + busy > limits.memory_bytes:
                notes.append(
                    f"Other loaded models use {_gb(busy)}; Ollama unloads idle ones to make room "
                    "for the comparison."
                )
    if limits.num_parallel is not None and limits.num_parallel > 1:
        notes.append(
            f"OLLAMA_NUM_PARALLEL={limits.num_parallel}: each loaded model reserves context "
            "memory for that many requests at once, which makes every model larger in memory."
        )
    return Capacity(not reasons, tuple(reasons), tuple(notes), tuple(loaded))


def check_capacity(gateway: OllamaGateway, models: Sequence[str], limits: Limits) -> Capacity:
    """Ask Ollama what is installed and loaded now, then :func:`assess_capacity`."""
    return assess_capacity(models, gateway.list_models(), gateway.running(), limits)


# -- scoring --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Focus:
    """The hosts and high-risk ports an answer about the subject should mention."""

    hosts: tuple[Host, ...]
    ports: tuple[tuple[Host, Port, str], ...]  # (host, port, risk level)


def _risky(host: Host, ports: Sequence[Port]) -> list[tuple[Host, Port, str]]:
    out = []
    for p in ports:
        level = port_risk(p, host).level
        if p.is_open and level in HIGH_RISK:
            out.append((host, p, level))
    return out


def focus_of(subject: Subject) -> Focus:
    """For a report: its hosts and high-risk open ports; for a diff: what changed."""
    report = subject.report
    if subject.base is None:
        hosts = tuple(h for h in report.hosts if h.status == "up" or h.timed_out)
        ports = tuple(x for h in hosts for x in _risky(h, h.open_ports))
        return Focus(hosts, ports)
    diff = diff_reports(subject.base, report)
    addresses: dict[str, Host] = {}
    risky: list[tuple[Host, Port, str]] = []
    for e in diff.new_hosts:
        h = report.host(e.address)
        if h is not None:
            addresses[h.address] = h
            risky += _risky(h, h.open_ports)
    for g in diff.gone_hosts:
        addresses.setdefault(g.address, subject.base.host(g.address) or Host(g.address))
    for closed in diff.closed:
        h = subject.base.host(closed.address)
        if h is not None:
            addresses.setdefault(h.address, h)
    entries: list[PortEntry | ChangeEntry] = [*diff.opened, *diff.changed]
    for entry in entries:
        h = report.host(entry.address)
        if h is None:
            continue
        addresses.setdefault(h.address, h)
        port = next(
            (p for p in h.ports if (p.port, p.protocol) == (entry.port, entry.protocol)), None
        )
        if port is not None:
            risky += _risky(h, [port])
    return Focus(tuple(addresses.values()), tuple(risky))


def _named(text: str, word: str) -> bool:
    return (
        re.search(rf"(?<![\w.:-]){re.escape(word)}(?![\w-]|\.\w)", text, re.IGNORECASE) is not None
    )


def _port_named(text: str, port: Port) -> bool:
    # The number alone (not inside an address or a longer number), or the service by name.
    number = re.search(rf"(?<![\w.:]){port.port}(?![\w]|\.\d)", text) is not None
    service = port.service.removeprefix("ssl/")
    return number or (len(service) >= 3 and _named(text, service))


def port_label(host: Host, port: Port) -> str:
    """``127.0.0.1 23/tcp`` style name of one host's port."""
    return f"{host.address} {port.label}"


def coverage(text: str, focus: Focus) -> dict[str, Any]:
    """Which focus hosts and high-risk ports the answer mentions and which it leaves out.

    A host counts as mentioned by its address or one of its names; a high-risk port by its number
    or its service name anywhere in the answer (a summary rarely ties every port to its host).
    """
    hosts_in: list[str] = []
    hosts_out: list[str] = []
    for h in focus.hosts:
        names = [h.address, *h.hostnames]
        (hosts_in if any(_named(text, n) for n in names if n) else hosts_out).append(h.address)
    ports_in: list[dict[str, Any]] = []
    ports_out: list[dict[str, Any]] = []
    for h, p, level in focus.ports:
        entry = {
            "host": h.address,
            "port": p.port,
            "protocol": p.protocol,
            "service": p.service,
            "level": level,
        }
        (ports_in if _port_named(text, p) else ports_out).append(entry)
    return {
        "hosts_mentioned": hosts_in,
        "hosts_missed": hosts_out,
        "ports_mentioned": ports_in,
        "ports_missed": ports_out,
    }


def score(text: str, subject: Subject, focus: Focus | None = None) -> dict[str, Any]:
    """The fact check and the coverage of one answer, as they are saved."""
    checked = factcheck.check(text, *subject.reports).to_dict()
    return {
        "fact_check": checked,
        "unsupported_claims": list(checked["unsupported"]),
        "coverage": coverage(text, focus or focus_of(subject)),
    }


# -- warm-up ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WarmUp:
    """Loading one model before the comparison: wall time, and the load time Ollama reported."""

    wall_s: float
    load_s: float | None


def warm_up(gateway: OllamaGateway, model: str, connect_timeout_s: float = 5.0) -> WarmUp:
    """Load ``model`` into memory with an empty-prompt /api/generate, as Ollama documents.

    The gateway has no call for this, so it is one small request here, with the gateway's host
    and read timeout and its error translation rules.
    """
    timeout = httpx.Timeout(gateway.read_timeout_s, connect=connect_timeout_s)
    t0 = time.perf_counter()
    try:
        with httpx.Client(base_url=gateway.host, timeout=timeout) as http:
            response = http.post(
                "/api/generate", json={"model": model, "prompt": "", "stream": False}
            )
    except httpx.ConnectTimeout as exc:
        raise LLMUnavailable(gateway.host, "connection timed out") from exc
    except (httpx.ConnectError, ConnectionError) as exc:
        raise LLMUnavailable(gateway.host, "connection refused") from exc
    except httpx.TimeoutException as exc:
        raise LLMTimeout(gateway.read_timeout_s) from exc
    except httpx.HTTPError as exc:
        raise LLMError(f"Loading {model} failed: {exc}") from exc
    wall = time.perf_counter() - t0
    if response.status_code == 404:
        raise ModelMissing(model)
    if response.status_code >= 400:
        raise LLMError(f"Ollama refused to load {model} (HTTP {response.status_code}).")
    try:
        load_ns = response.json().get("load_duration")
    except ValueError:
        load_ns = None
    load = load_ns / 1e9 if isinstance(load_ns, int | float) else None
    return WarmUp(wall, load)


# -- the run --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LaneView:
    """What a page shows of one model while the comparison runs."""

    index: int
    model: str
    phase: str  # pending, warming up, running, complete, stopped, failed
    text: str
    thinking: str
    error: str


# Comparisons streaming in this process; a saved one that still says "streaming" and is not
# here was cut short by a process that died.
_LIVE: set[str] = set()


def is_running(comparison_id: str) -> bool:
    """True while this process is still streaming that comparison."""
    return comparison_id in _LIVE


class _Lane:
    def __init__(self, index: int, job: StreamJob) -> None:
        self.index = index
        self.job = job
        self.model = job.model
        self.warm: WarmUp | None = None
        self.warming = False
        self.started = False
        self.error = ""

    @property
    def phase(self) -> str:
        if self.error and not self.started:
            return "failed"
        if self.warming:
            return "warming up"
        if not self.started:
            return "stopped" if self.job.stop_requested else "pending"
        state = self.job.state
        return "running" if state == "pending" else state


class ComparisonRun:
    """One comparison: started once, read from any thread, each model stoppable alone."""

    def __init__(
        self,
        gateway: OllamaGateway,
        store: Store,
        subject: Subject,
        models: Sequence[str],
        audience: str = "executive",
        *,
        warmup: bool = False,
        options: Mapping[str, Any] | None = None,
        owner: str = "",
        think: bool | None = None,
        clock: Callable[[], float] = time.time,
        warm: Callable[[OllamaGateway, str], WarmUp] = warm_up,
    ) -> None:
        self.models = tuple(check_models(models))
        self.gateway = gateway
        self.store = store
        self.subject = subject
        self.audience = audience
        self.warmup = warmup
        self.prompt = subject.prompt(audience, options)
        self.options = dict(self.prompt.options)
        self.owner = owner
        self.id = new_id("cmp")
        self._clock = clock
        self._warm = warm
        self._focus = focus_of(subject)
        self.lanes = tuple(
            _Lane(
                i,
                StreamJob(
                    gateway,
                    model,
                    self.prompt.messages,
                    self.options,
                    think=think,
                    on_finish=self._lane_done,
                ),
            )
            for i, model in enumerate(self.models)
        )
        self.created_at = clock()
        self._wake = threading.Event()
        self._saved_shape: tuple[tuple[str, int, int], ...] = ()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.comparison: Comparison | None = None
        self.save_error = ""

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> ComparisonRun:
        """Record the comparison, then warm up (optionally) and stream in background threads.

        The first save happens here, in the caller's thread, so that a store that cannot be
        written stops the comparison before any model runs (StoreError).
        """
        self.store.save_comparison(self._record(final=False))
        _LIVE.add(self.id)
        self._thread = threading.Thread(target=self._run, name=f"compare-{self.id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, model: str | int) -> None:
        """Stop one model's answer; the others go on. Its text so far is kept."""
        lane = self.lanes[model] if isinstance(model, int) else self._lane(model)
        lane.job.stop()

    def stop_all(self) -> None:
        """Stop every model."""
        for lane in self.lanes:
            lane.job.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every answer ended and the comparison is saved; False on timeout."""
        return self._done.wait(timeout)

    @property
    def finished(self) -> bool:
        """True once every answer ended and the final record was saved (or failed to save)."""
        return self._done.is_set()

    def views(self) -> list[LaneView]:
        """A snapshot of every model's answer so far, in the chosen order."""
        return [
            LaneView(
                lane.index,
                lane.model,
                lane.phase,
                lane.job.text,
                lane.job.thinking,
                lane.error or (str(lane.job.error) if lane.job.error else ""),
            )
            for lane in self.lanes
        ]

    # -- the coordinator ---------------------------------------------------------------------------
    def _lane(self, model: str) -> _Lane:
        for lane in self.lanes:
            if lane.model == model:
                return lane
        raise KeyError(model)

    def _warm_lane(self, lane: _Lane) -> None:
        try:
            lane.warm = self._warm(self.gateway, lane.model)
        except LLMError as exc:
            lane.error = str(exc)
            log.warning("warm-up of %s failed: %s", lane.model, exc)
        finally:
            lane.warming = False

    def _run(self) -> None:
        try:
            if self.warmup:
                threads = []
                for lane in self.lanes:
                    if lane.job.stop_requested:
                        continue
                    lane.warming = True
                    t = threading.Thread(
                        target=self._warm_lane, args=(lane,), name=f"warm-{lane.model}"
                    )
                    t.start()
                    threads.append(t)
                for t in threads:
                    t.join()
            for lane in self.lanes:
                if lane.error:
                    continue
                lane.started = True
                lane.job.start()
            # Partial answers are saved about once a second (and at once when a model ends), so a
            # crash or a kill loses at most that much.
            while any(lane.started and lane.job.state not in ENDED for lane in self.lanes):
                self._wake.wait(SAVE_EVERY_S)
                self._wake.clear()
                self._save_partial()
            for lane in self.lanes:
                if lane.started:
                    lane.job.wait()
        except Exception:  # the run must always end in a saved, finished state
            log.exception("comparison %s failed", self.id)
        finally:
            self._finish()

    def _finish(self) -> None:
        record = self._record(final=True)
        try:
            self.store.save_comparison(record)
        except StoreError as exc:
            self.save_error = str(exc)
            log.error("comparison %s could not be saved: %s", self.id, exc)
        self.comparison = record
        _LIVE.discard(self.id)
        self._done.set()

    def _lane_done(self, job: StreamJob) -> None:
        self._wake.set()

    def _save_partial(self) -> None:
        shape = tuple((v.phase, len(v.text), len(v.thinking)) for v in self.views())
        if shape == self._saved_shape:
            return
        self._saved_shape = shape
        try:
            self.store.save_comparison(self._record(final=False))
        except StoreError as exc:
            log.warning("partial save of comparison %s failed: %s", self.id, exc)

    # -- the record --------------------------------------------------------------------------------
    def _result(self, lane: _Lane, final: bool) -> dict[str, Any]:
        job = lane.job
        text = job.text
        phase = lane.phase
        if final and phase in ("pending", "running", "warming up"):
            phase = "failed"
        status = phase if phase in ("complete", "stopped", "failed") else "streaming"
        metrics = job.metrics.to_dict() if lane.started else {}
        metrics["warmup_s"] = lane.warm.wall_s if lane.warm else None
        metrics["warmup_load_s"] = lane.warm.load_s if lane.warm else None
        result: dict[str, Any] = {
            "model": lane.model,
            "status": status,
            "error": lane.error or (str(job.error) if job.error else ""),
            "text": text,
            "thinking": job.thinking,
            "metrics": metrics,
        }
        if final or status != "streaming":
            result.update(score(text, self.subject, self._focus))
        return result

    def _record(self, final: bool) -> Comparison:
        now = self._clock()
        return Comparison(
            id=self.id,
            report_id=self.subject.report.id,
            base_report_id=self.subject.base.id if self.subject.base else None,
            audience=self.audience,
            models=self.models,
            prompt_version=self.prompt.version,
            options={**self.options, "warmup": self.warmup},
            results=tuple(self._result(lane, final) for lane in self.lanes),
            owner=self.owner,
            created_at=self.created_at,
            updated_at=now,
        )


# -- after the run --------------------------------------------------------------------------------
def set_verdict(store: Store, comparison_id: str, winner: str, note: str = "") -> Comparison:
    """Record the analyst's verdict (a model of the comparison, or "tie") and save it again."""
    comp = store.get_comparison(comparison_id)
    if winner != TIE and winner not in comp.models:
        raise ComparisonRefused(
            f"{winner!r} did not take part in this comparison; choose one of "
            f"{', '.join(comp.models)} or {TIE!r}."
        )
    updated = replace(comp, winner=winner, note=note.strip(), updated_at=time.time())
    store.save_comparison(updated)
    return updated


def result_json(result: Mapping[str, Any]) -> dict[str, Any]:
    """One model's entry of ``compare --format json``."""
    return {
        "model": result.get("model", ""),
        "status": result.get("status", ""),
        "text": result.get("text", ""),
        "metrics": dict(result.get("metrics") or {}),
        "unsupported_claims": list(result.get("unsupported_claims") or []),
    }
