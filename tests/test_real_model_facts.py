"""The fact check and the context budget on a real model's output (Gemma 3 270M, the base model,
in llama.cpp behind Ollama's API; a test adapter, not Ollama).

The base model writes poor summaries and invents addresses, ports and CVE ids: exactly what the
fact check must catch. Asked plainly it mostly echoes its instructions, so the fact check runs on
``gemma3:270m-findings``, whose template opens the answer with "Findings, host by host:" (see
tests/real_model_server.py). The test finds the claims in each answer with its own extraction
(written here, independent of llm.factcheck) and compares.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

import config
from llm.prompt import DEFAULT_NUM_CTX
from llm.summarize import prepare
from scanner.importer import import_bytes
from scanner.models import Host, Port, Report
from services import Services, build
from tests.fixtures_real_model import CORPUS, RealModel

pytestmark = pytest.mark.real_model

# Real scans with several hosts up and open ports.
MULTI_HOST = (
    "KristovZander_Task1-nmap__scan.xml",  # 5 hosts up, 11 open ports
    "nickdkelly_homesec__nmap_scan.xml",  # 4 up, 12 open
    "gitpan_Nmap-Parser-XML__example.xml",  # 7 up, 9 open
    "nmap_nmap__zenmap_xml_test6.xml",  # 4 up, 6 open
    "DefectDojo__nmap_issue12411.xml",  # 2 up, 4 open
)
GENERATIONS = 20
FACTS_PREDICT = 48


@pytest.fixture
def real_services(real_config: config.Config) -> Iterator[Services]:
    """Services pointed at the real-model adapter and a fresh database."""
    svc = build(real_config)
    yield svc
    svc.close()


# -- the test's own extraction ---------------------------------------------------------------------
_V4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)(/\d{1,3})?")
_V6 = re.compile(r"(?<![\w:.])\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}\]?(?![\w:])(/\d{1,3})?")
_VERSION_WORD = re.compile(r"(?:\bversion|\bver\.?|\bv)\s*$", re.IGNORECASE)
_PORT_PROTO = re.compile(r"(?<![\w.])(\d{1,5})/(tcp|udp|sctp)\b", re.IGNORECASE)
_CVE_ID = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE)


def claims_in(text: str) -> set[tuple[str, str]]:
    """Every IPv4/IPv6 address, port/proto and CVE id the text names, as (kind, value).

    An address with a prefix length names a network, and a dotted quad after "version" is a
    version number: neither is an address claim.
    """
    found: set[tuple[str, str]] = set()
    for m in [*_V4.finditer(text), *_V6.finditer(text)]:
        raw = m.group(0).strip("[]")
        if m.group(1) or not any(c.isalnum() for c in raw):
            continue
        if _VERSION_WORD.search(text[max(0, m.start() - 12) : m.start()]):
            continue
        try:
            found.add(("host", ipaddress.ip_address(raw).compressed))
        except ValueError:
            continue  # a version number or a time, not an address
    for m in _PORT_PROTO.finditer(text):
        if 1 <= int(m.group(1)) <= 65535:
            found.add(("port", str(int(m.group(1)))))
    found.update(("cve", m.group(0).upper()) for m in _CVE_ID.finditer(text))
    return found


def covered(claim: tuple[str, str], flagged: set[tuple[str, str]]) -> bool:
    """Whether a flagged claim covers ``claim``: the same value, the same port on a named host
    (``addr:port``), or a flagged network (``a.b.c.d/nn``) that holds the address."""
    kind, value = claim
    for k, v in flagged:
        if k != kind:
            continue
        if v == value or (kind == "port" and v.rpartition(":")[2] == value):
            return True
        if kind == "host" and "/" in v:
            try:
                if ipaddress.ip_address(value) in ipaddress.ip_network(v, strict=False):
                    return True
            except ValueError:
                continue
    return False


@dataclass
class Held:
    """What a report holds: addresses, port numbers (and on which host), CVE ids, host names."""

    hosts: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)
    pairs: set[tuple[str, int]] = field(default_factory=set)
    cves: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, report: Report) -> Held:
        """Read straight from the report's hosts and scripts."""
        held = cls()
        for target in report.targets:
            try:
                held.hosts.add(ipaddress.ip_address(target).compressed)
            except ValueError:
                held.names.add(target.lower())
        for h in report.hosts:
            address = ipaddress.ip_address(h.address).compressed
            held.hosts.add(address)
            names = {n.lower().rstrip(".") for n in h.hostnames}
            held.names.update(names)
            texts = [s.output for s in h.scripts]
            for p in h.ports:
                held.ports.add(p.port)
                held.pairs.update((key, p.port) for key in {address, *names})
                texts += [p.product, p.version, p.extrainfo, *p.cpe, *(s.output for s in p.scripts)]
            held.cves.update(m.group(0).upper() for t in texts for m in _CVE_ID.finditer(t))
        return held

    def holds(self, kind: str, value: str) -> bool:
        """Whether a claim of ``kind`` with ``value`` is in the report."""
        if kind == "cve":
            return value.upper() in self.cves
        if kind == "port":
            addr, _, port = value.rpartition(":")
            return (addr, int(port)) in self.pairs if addr else int(port) in self.ports
        try:
            return ipaddress.ip_address(value).compressed in self.hosts
        except ValueError:
            return value.lower() in self.names


@pytest.mark.timeout(900)  # twenty real answers; minutes on a busy machine
def test_fact_check_flags_every_invented_claim_and_nothing_true_over_20_real_answers(
    real_services: Services, real_model: RealModel, artifacts: Path
) -> None:
    reports = []
    for name in MULTI_HOST:
        report = import_bytes(real_services.store, (CORPUS / name).read_bytes(), filename=name)
        assert report.hosts_up >= 2
        reports.append(report)
    seen = fabricated = flagged_total = 0
    rows = []
    for i in range(GENERATIONS):
        report = reports[i % len(reports)]
        run = prepare(
            real_services.store,
            real_services.llm,
            report.id,
            real_model.findings,
            ("technical", "executive")[i % 2],
            options={"num_predict": FACTS_PREDICT, "seed": 1000 + i, "temperature": 0.9},
        ).start()
        assert run.wait(120)
        assert run.summary.status == "complete", run.summary.error
        fc = run.fact_check
        assert fc is not None
        held = Held.of(report)
        text = run.summary.text
        claims = claims_in(text)
        invented = {c for c in claims if not held.holds(*c)}
        flagged = {(c.kind, c.value) for c in fc.unsupported}
        missed = {c for c in invented if not covered(c, flagged)}
        wrongly = {c for c in flagged if "/" not in c[1] and held.holds(*c)}
        assert not missed, f"not flagged in answer {i}: {sorted(missed)}\n{text}"
        assert not wrongly, f"flagged although the report holds them: {sorted(wrongly)}\n{text}"
        seen += len(claims)
        fabricated += len(invented)
        flagged_total += len(flagged)
        rows.append({"report": MULTI_HOST[i % len(MULTI_HOST)], "claims": len(claims)})
        rows[-1].update(invented=sorted(map(list, invented)), flagged=sorted(map(list, flagged)))
    figures = {
        "generations": GENERATIONS,
        "claims_seen": seen,
        "fabrications": fabricated,
        "flagged": flagged_total,
    }
    print(f"real-model fact check: {figures}")
    (artifacts / "real_model_factcheck.json").write_text(json.dumps({**figures, "answers": rows}))
    assert seen > 0, "twenty answers named no address, port or CVE: the check saw nothing"
    assert fabricated > 0, "no answer invented anything: the check was not put to the test"


# -- the context window ----------------------------------------------------------------------------
def _big_report(hosts: int) -> Report:
    """``hosts`` hosts up with two services each; every 500th also has telnet open (high)."""
    out = []
    for i in range(hosts):
        ports = [
            Port(22, "tcp", "open", "syn-ack", "ssh", "OpenSSH", "8.9p1"),
            Port(443, "tcp", "open", "syn-ack", "https", "nginx", "1.24.0"),
        ]
        if i % 500 == 0:
            ports.append(Port(23, "tcp", "open", "syn-ack", "telnet"))
        out.append(Host(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", ports=tuple(ports)))
    return Report(
        id="rep-10k", targets=("10.0.0.0/16",), profile="quick", created_at=1.8e9, hosts=tuple(out)
    )


@pytest.fixture
def patient_services(real_config: config.Config) -> Iterator[Services]:
    """Services that wait up to 8 minutes for a first token: thousands of prompt tokens on a
    busy CPU can take that long, so the user's setting is raised, as its timeout message says."""
    svc = build(replace(real_config, ollama_timeout_s=480.0))
    yield svc
    svc.close()


def _named(facts: str, address: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(address)}(?![\d])", facts) is not None


@pytest.mark.timeout(600)  # a prompt of thousands of tokens
def test_a_10000_host_report_fits_the_context_and_says_what_was_left_out(
    patient_services: Services, real_model: RealModel
) -> None:
    report = _big_report(10_000)
    patient_services.store.save_report(report)
    run = prepare(
        patient_services.store,
        patient_services.llm,
        report.id,
        real_model.model,
        "technical",
        options={"num_predict": 24},
    )
    num_ctx = run.summary.options["num_ctx"]
    assert num_ctx == DEFAULT_NUM_CTX  # min(the app's default, the model's 32,768)
    run.start()
    assert run.wait(540)
    summary = run.summary
    assert summary.status == "complete", summary.error
    # The model's own count of the prompt: it fits, with room for the answer.
    prompt_tokens = summary.metrics["prompt_tokens"]
    print(f"10,000-host prompt: {prompt_tokens} tokens of num_ctx {num_ctx}")
    assert 1000 < prompt_tokens < num_ctx
    # What was left out is recorded with the summary, and the data block states it.
    facts = run.prompt.facts
    omitted = summary.options["omitted"]
    left_out = [h for h in report.hosts if not _named(facts, h.address)]
    # Every host absent from the prompt is counted (a few left out may still be named in the note).
    assert 0 < len(left_out) <= omitted["hosts"] < len(report.hosts)
    assert re.search(rf"\b{omitted['hosts']}\b host", facts), "the prompt does not say it"
    # The high-risk hosts (telnet open) were all kept.
    assert all(_named(facts, h.address) for h in report.hosts[::500])
