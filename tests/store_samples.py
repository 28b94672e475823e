"""Sample reports and records for the store tests, with every field filled in."""

from __future__ import annotations

from scanner.models import Host, OSMatch, Port, Report, Script
from store.records import Comparison, Job, Summary


def full_report(report_id: str = "rep-full", created_at: float = 1_700_000_000.0) -> Report:
    """A report that uses every field: hostnames, MAC, OS, scripts, a timed-out host, IPv6."""
    web = Host(
        address="127.0.0.1",
        addrtype="ipv4",
        status="up",
        reason="localhost-response",
        hostnames=("localhost", "web.internal"),
        mac="00:11:22:33:44:55",
        vendor="Acme Networks",
        os=(OSMatch("Linux 5.0 - 5.14", 96), OSMatch("Linux 4.15", 88)),
        ports=(
            Port(
                22,
                "tcp",
                "open",
                reason="syn-ack",
                service="ssh",
                product="OpenSSH",
                version="9.2p1 Debian 2",
                extrainfo="protocol 2.0",
                cpe=("cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"),
                scripts=(Script("ssh-hostkey", "256 aa:bb (ED25519)\n3072 cc:dd (RSA)"),),
            ),
            Port(
                80,
                "tcp",
                "open",
                reason="syn-ack",
                service="http",
                product="nginx",
                version="1.22.1",
                scripts=(
                    Script("http-title", "<script>alert(1)</script> Ünïcødé ✓"),
                    Script("http-server-header", "nginx/1.22.1"),
                ),
            ),
            Port(161, "udp", "open|filtered", reason="no-response", service="snmp"),
            Port(3306, "tcp", "closed", reason="reset"),
        ),
        scripts=(Script("smb-os-discovery", "OS: Unix"),),
    )
    slow = Host(address="127.0.0.2", status="up", reason="user-set", timed_out=True)
    down = Host(address="127.0.0.3", status="down", reason="no-response")
    v6 = Host(
        address="::1",
        addrtype="ipv6",
        hostnames=("ip6-localhost",),
        ports=(Port(443, "tcp", "open", service="https", product="Caddy"),),
    )
    return Report(
        id=report_id,
        hosts=(web, slow, down, v6),
        targets=("127.0.0.1", "127.0.0.2-3", "::1"),
        profile="standard",
        source="scan",
        started_at=created_at - 30.5,
        finished_at=created_at - 1.25,
        nmap_version="7.93",
        args="nmap -sV --top-ports 1000 -oX - -- 127.0.0.1",
        complete=False,
        note="interrupted after 4 hosts",
        created_at=created_at,
        owner="analyst@example.test",
        extra={"job_id": "job-1", "stats": {"elapsed": 29.25, "pairs": [[1, 2], [3, 4]]}},
    )


def small_report(report_id: str, created_at: float, hosts: int = 1) -> Report:
    """A report with ``hosts`` up hosts, each with one open port."""
    return Report(
        id=report_id,
        hosts=tuple(
            Host(address=f"127.0.1.{i + 1}", ports=(Port(8000 + i, "tcp", "open"),))
            for i in range(hosts)
        ),
        targets=("127.0.1.0/24",),
        profile="quick",
        created_at=created_at,
    )


def big_report(report_id: str, hosts: int, ports: int = 20) -> Report:
    """A report whose hosts take several MiB as JSON: no single document could hold it."""
    banner = "Server: Apache/2.4.57 (Debian) mod_ssl/2.4.57 OpenSSL/3.0.11 " * 4
    return Report(
        id=report_id,
        hosts=tuple(
            Host(
                address=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                hostnames=(f"host-{i}.lab.internal",),
                ports=tuple(
                    Port(
                        1000 + p,
                        "tcp",
                        "open",
                        reason="syn-ack",
                        service="http",
                        product="Apache httpd",
                        version="2.4.57",
                        scripts=(Script("http-server-header", f"{banner} #{i}-{p} ✓"),),
                    )
                    for p in range(ports)
                ),
            )
            for i in range(hosts)
        ),
        targets=("10.0.0.0/16",),
        profile="full-tcp",
        created_at=1_700_000_500.0,
    )


def job(job_id: str, created_at: float, status: str = "queued") -> Job:
    """A scan job."""
    return Job(
        id=job_id,
        targets=("127.0.0.1", "::1"),
        profile="quick",
        ports="22,80,8000-8100",
        status=status,
        owner="analyst",
        created_at=created_at,
        started_at=created_at + 1 if status != "queued" else None,
        progress=42.5 if status == "running" else 0.0,
        eta_s=12.0 if status == "running" else None,
        task="SYN Stealth Scan",
        pid=4242,
        pgid=4242,
        runner_pid=4000,
    )


def summary(
    summary_id: str,
    report_id: str,
    created_at: float,
    text: str = "",
    status: str = "streaming",
    base_report_id: str | None = None,
) -> Summary:
    """An executive summary with options, metrics and a fact check."""
    return Summary(
        id=summary_id,
        report_id=report_id,
        base_report_id=base_report_id,
        model="llama3.2:latest",
        audience="executive",
        prompt_version="exec-v3",
        options={"temperature": 0.2, "seed": 7, "num_ctx": 8192},
        text=text,
        thinking="",
        status=status,
        metrics={"ttft_s": 0.41, "tokens_per_s": 38.5, "eval_count": 512},
        fact_check={
            "unsupported": [{"kind": "cve", "value": "CVE-2099-0001"}],
            "pairs": [["host", "127.0.0.1"], ["port", "22"]],
        },
        owner="analyst",
        created_at=created_at,
        updated_at=created_at + 3.5,
        writer_pid=1234,
    )


def comparison(comparison_id: str, report_id: str, created_at: float) -> Comparison:
    """A model comparison with two answers and a verdict."""
    return Comparison(
        id=comparison_id,
        report_id=report_id,
        audience="technical",
        models=("llama3.2:latest", "mistral:7b"),
        prompt_version="tech-v2",
        options={"seed": 11},
        results=(
            {"model": "llama3.2:latest", "text": "Port 22 open.", "metrics": {"tps": 40.1}},
            {"model": "mistral:7b", "text": "SSH exposed.", "unsupported_claims": []},
        ),
        winner="mistral:7b",
        note="shorter and right",
        owner="analyst",
        created_at=created_at,
        updated_at=created_at + 60,
    )
