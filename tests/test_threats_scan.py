"""THREATS.md rows 1, 2, 4, 5 and 16: hostile scan input is refused before nmap exists.

The checks run in a child process inside an empty network namespace (``unshare -n``), so even a
bug that started a scan could not send a packet anywhere. An ``nmap`` stand-in first on PATH
records every start: it must record exactly one, the valid control scan at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from store.sqlite import SQLiteStore
from tests.fixtures_scanner import PYTHON, ROOT

pytestmark = pytest.mark.nmap

CHILD = textwrap.dedent(
    """
    import contextlib, io, json, os, sys
    from dataclasses import replace
    import config
    from config import parse_scope
    from scanner import cli
    from scanner.errors import ScanError
    from scanner.runner import LocalRunner
    from store.sqlite import SQLiteStore

    tmp = sys.argv[1]
    names = {
        "evil.example": ["10.1.1.1"],
        "inside.lab": ["127.0.0.9"],
        "half.lab": ["127.0.0.5", "192.0.2.7"],
    }
    cfg = config.load(os.environ)
    store = SQLiteStore(cfg.db_path)
    wide = LocalRunner(store, cfg, resolver=lambda n: names.get(n, []))
    narrow = LocalRunner(
        store, replace(cfg, scope=parse_scope("127.0.0.1/32")), resolver=lambda n: names.get(n, [])
    )
    results = {"netns": os.readlink("/proc/self/ns/net"), "submit": [], "cli": []}
    for runner_name, targets, profile, ports in json.loads(sys.argv[2]):
        runner = narrow if runner_name == "narrow" else wide
        try:
            job = runner.submit(targets, profile, ports)
            results["submit"].append([targets, ports, "ACCEPTED " + job.id])
        except ScanError as exc:
            results["submit"].append([targets, ports, type(exc).__name__ + ": " + str(exc)])
    for argv in json.loads(sys.argv[3]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exc:
                code = exc.code
        results["cli"].append([argv, code, out.getvalue(), err.getvalue()])
    control = wide.submit("127.0.0.1", "quick")
    results["control"] = wide.wait(control.id, timeout=30).status
    wide.shutdown()
    narrow.shutdown()
    print(json.dumps(results))
    """
)


def submit_cases(tmp: Path) -> list[tuple[str, str, str, str]]:
    """(runner, targets, profile, ports) tuples, every one of which must be refused."""
    return [
        # Row 1: options smuggled in targets.
        ("wide", f"127.0.0.1 -oN {tmp}/row1.txt", "quick", ""),
        ("wide", "127.0.0.1 --script=/tmp/evil.nse", "quick", ""),
        ("wide", "-iL /etc/passwd", "quick", ""),
        ("wide", f"127.0.0.1 -oX {tmp}/row1.xml", "quick", ""),
        ("wide", f"127.0.0.1;touch {tmp}/row1-shell", "quick", ""),
        ("wide", f"$(touch {tmp}/row1-subst)", "quick", ""),
        ("wide", "`id`", "quick", ""),
        ("wide", "127.0.0.1|id", "quick", ""),
        ("wide", f"127.0.0.1>{tmp}/row1-redirect", "quick", ""),
        ("wide", "--resume /etc/shadow", "quick", ""),
        # Row 2: free-form arguments through the profile name.
        ("wide", "127.0.0.1", f"quick -oN {tmp}/row2.txt", ""),
        ("wide", "127.0.0.1", "--script=/tmp/evil.nse", ""),
        # Row 4: outside the scope, before or after expansion, and over the cap.
        ("wide", "evil.example", "quick", ""),
        ("wide", "half.lab", "quick", ""),
        ("wide", "localhost/30", "quick", ""),
        ("wide", "10.0.0.0/8", "quick", ""),
        ("wide", "127.0.0.0/8", "quick", ""),
        ("wide", "127.0.0.1 ::1", "quick", ""),
        ("narrow", "127.0.0.0-3", "quick", ""),
        ("narrow", "127.0.0.0/30", "quick", ""),
        ("narrow", "inside.lab", "quick", ""),
        # Row 5: bad port specs.
        ("wide", "127.0.0.1", "quick", "0"),
        ("wide", "127.0.0.1", "quick", "70000"),
        ("wide", "127.0.0.1", "quick", "1-"),
        ("wide", "127.0.0.1", "quick", "22 --script=x"),
        ("wide", "127.0.0.1", "quick", f"22 -oN {tmp}/row5.txt"),
        # Row 16: quoting errors are refusals, not tracebacks.
        ("wide", "127.0.0.1 'x", "quick", ""),
        ("wide", '"127.0.0.1', "quick", ""),
    ]


def cli_cases(tmp: Path) -> list[list[str]]:
    """Command lines that must exit 2 without starting nmap."""
    return [
        ["scan", "127.0.0.1", "--profile", "quick", "-oN", f"{tmp}/cli1.txt"],
        ["scan", "--profile", "quick", "--script=/tmp/evil.nse", "127.0.0.1"],
        ["scan", "--profile", "quick", "--", "-iL", "/etc/passwd"],
        ["scan", "--profile", "quick", "--", f"127.0.0.1 -oN {tmp}/cli2.txt"],
        ["scan", "--profile", f"quick -oN {tmp}/cli3.txt", "127.0.0.1"],
        ["scan", "--profile", "quick", "--ports", "22 --script=x", "--", "127.0.0.1"],
        ["scan", "--profile", "quick", "--", "10.0.0.1"],
        ["scan", "--profile", "quick", "--", "127.0.0.1 'unbalanced"],
    ]


def test_hostile_input_is_refused_inside_an_empty_network_namespace(
    tmp_path: Path, child_env: dict[str, str], db_path: Path
) -> None:
    marker = tmp_path / "nmap-started"
    fake = tmp_path / "bin" / "nmap"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {marker}\n')
    fake.chmod(0o755)
    env = dict(child_env, PATH=f"{fake.parent}:{os.environ['PATH']}")
    env["SCANSCRIBE_SCOPE"] = "127.0.0.0/8,::1/128"
    cases = submit_cases(tmp_path)
    cli_argv = cli_cases(tmp_path)
    proc = subprocess.run(
        [
            "unshare",
            "-n",
            PYTHON,
            "-c",
            CHILD,
            str(tmp_path),
            json.dumps(cases),
            json.dumps(cli_argv),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.splitlines()[-1])
    assert results["netns"] != os.readlink("/proc/self/ns/net")

    for (_runner, targets, profile, ports), (_t, _p, outcome) in zip(
        cases, results["submit"], strict=True
    ):
        assert outcome.startswith("TargetRefused: "), (targets, profile, ports, outcome)
        assert "refused" in outcome
        assert "root:x:" not in outcome
    for argv, (_a, code, out, err) in zip(cli_argv, results["cli"], strict=True):
        assert code == 2, (argv, out, err)
        assert out == "", argv
        assert err.strip(), argv
        assert "Traceback" not in err

    # Only the valid control scan at the end started the nmap stand-in.
    assert results["control"] == "failed"  # the stand-in writes no XML
    starts = marker.read_text().splitlines()
    assert len(starts) == 1
    assert starts[0].endswith("-n -oX - --stats-every 1s -- 127.0.0.1")
    created = {p.name for p in tmp_path.iterdir()}
    assert created <= {
        "bin",
        "nmap-started",
        "scanscribe.db",
        "scanscribe.db-shm",
        "scanscribe.db-wal",
    }
    store = SQLiteStore(db_path)
    try:
        assert len(store.list_jobs()) == 1
    finally:
        store.close()


def test_refusal_messages_name_token_and_rule(tmp_path: Path) -> None:
    """Spot checks of what the analyst reads for each kind of refusal."""
    from config import parse_scope
    from scanner.errors import TargetRefused
    from scanner.targets import parse_ports, resolve_targets

    scope = parse_scope("127.0.0.0/8")
    expectations = [
        ("-iL /etc/passwd", "'-iL'", "starts with '-'"),
        ("evil.example", "'evil.example'", "10.1.1.1, which is outside the scope"),
        ("127.0.0.1 'x", '"\'x"', "character"),
    ]
    for text, token, rule in expectations:
        with pytest.raises(TargetRefused) as info:
            resolve_targets(text, scope, 4096, lambda n: ["10.1.1.1"])
        assert token in str(info.value) and rule in str(info.value)
    with pytest.raises(TargetRefused, match="'22 --script=x'"):
        parse_ports("22 --script=x")
