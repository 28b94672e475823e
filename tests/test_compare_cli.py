"""``python -m llm compare``: json shape, the comparison saved, and the exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import config
from llm.cli import main
from services import Services, build
from store.sqlite import SQLiteStore
from tests import compare_support as cs
from tests.ollama_double import ModelScript, OllamaDouble

ROOT = config.PROJECT_ROOT


@pytest.fixture
def double() -> Iterator[OllamaDouble]:
    """Two grounded-or-not models and a slower third."""
    d = cs.double(
        fast__latest=ModelScript(answer=cs.GROUNDED),
        slow__latest=ModelScript(answer=cs.INVENTED, first_token_delay_s=0.3),
        third__latest=ModelScript(answer=cs.words(5)),
    )
    yield d
    d.stop()


@pytest.fixture
def svc(db_path: Path, double: OllamaDouble) -> Iterator[Services]:
    """Services on a fresh database holding the two-host report, pointed at the double."""
    s = build(config.load({"SCANSCRIBE_DB": str(db_path), "OLLAMA_HOST": double.url}))
    s.store.save_report(cs.report())
    yield s
    s.close()


def _cli(svc: Services, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), services=svc, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_json_ends_with_one_object_per_comparison_and_it_is_saved(svc: Services) -> None:
    code, out, err = _cli(
        svc, "compare", "rep-cmp", "--model", "fast", "--model", "slow", "--format", "json"
    )
    assert code == 0, err
    obj = json.loads(out.strip().splitlines()[-1])
    assert set(obj) == {"id", "results"}
    assert [r["model"] for r in obj["results"]] == ["fast:latest", "slow:latest"]
    for r in obj["results"]:
        assert {"model", "text", "metrics", "unsupported_claims"} <= set(r)
        assert r["metrics"]["output_tokens"] > 0 and r["metrics"]["ttft_s"] > 0
    fast, slow = obj["results"]
    assert fast["text"] == cs.GROUNDED and fast["unsupported_claims"] == []
    assert {"kind": "cve", "value": "CVE-2021-44228"} in slow["unsupported_claims"]
    saved = svc.store.get_comparison(obj["id"])
    assert [r["text"] for r in saved.results] == [cs.GROUNDED, cs.INVENTED]
    assert "not in the scan data — verify: cve CVE-2021-44228" in err
    assert f"Saved comparison {obj['id']}" in err


def test_text_format_prints_each_answer_under_its_model(svc: Services) -> None:
    code, out, _ = _cli(svc, "compare", "rep-cmp", "--model", "third", "--model", "fast")
    assert code == 0
    assert f"== third:latest (complete) ==\n{cs.words(5)}\n" in out
    assert f"== fast:latest (complete) ==\n{cs.GROUNDED}\n" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "nope", "--model", "fast", "--model", "slow"], "nope"),
        (["compare", "rep-cmp", "--model", "fast", "--model", "ghost"], "ollama pull ghost"),
        (["compare", "rep-cmp", "--model", "fast"], "2 to 4 models; 1 given"),
        (
            ["compare", "rep-cmp", *[x for m in "abcde" for x in ("--model", m)]],
            "2 to 4 models; 5 given",
        ),
        (["compare", "rep-cmp", "--model", "fast", "--model", "fast:latest"], "chosen twice"),
    ],
)
def test_bad_input_exits_2_and_saves_nothing(
    svc: Services, double: OllamaDouble, argv: list[str], message: str
) -> None:
    code, _, err = _cli(svc, *argv)
    assert code == 2
    assert message in err
    assert svc.store.list_comparisons() == []
    assert double.chat_requests() == []


def test_ollama_unavailable_exits_1_with_the_fix(db_path: Path) -> None:
    svc = build(config.load({"SCANSCRIBE_DB": str(db_path), "OLLAMA_HOST": "127.0.0.1:9"}))
    try:
        svc.store.save_report(cs.report())
        code, _, err = _cli(svc, "compare", "rep-cmp", "--model", "a", "--model", "b")
    finally:
        svc.close()
    assert code == 1
    assert "ollama serve" in err


def test_capacity_problem_is_said_on_stderr(svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "1")
    code, _, err = _cli(svc, "compare", "rep-cmp", "--model", "fast", "--model", "third")
    assert code == 0
    assert "warning: Ollama keeps at most 1 model(s) loaded" in err


def test_python_dash_m_llm_compare_runs_end_to_end(db_path: Path, double: OllamaDouble) -> None:
    store = SQLiteStore(db_path)
    store.save_report(cs.report())
    store.close()
    env = {
        **os.environ,
        "SCANSCRIBE_DB": str(db_path),
        "OLLAMA_HOST": double.url,
        "SCANSCRIBE_STORE": "sqlite",
    }
    argv = ["compare", "rep-cmp", "--model", "fast", "--model", "third", "--format", "json"]
    proc = subprocess.run(
        [sys.executable, "-m", "llm", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["model"] for r in obj["results"]] == ["fast:latest", "third:latest"]
    proc = subprocess.run(
        [sys.executable, "-m", "llm", "compare", "rep-cmp", "--model", "fast"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2


def test_a_diff_with_warm_up(svc: Services, double: OllamaDouble) -> None:
    older = cs.report("rep-old")
    svc.store.save_report(replace(older, hosts=older.hosts[:1], created_at=1.0))
    argv = ["compare", "rep-cmp", "--base", "rep-old", "--warmup", "--audience", "technical"]
    code, out, err = _cli(svc, *argv, "--model", "fast", "--model", "third", "--format", "json")
    assert code == 0, err
    comp = svc.store.get_comparison(json.loads(out.strip().splitlines()[-1])["id"])
    assert (comp.report_id, comp.base_report_id, comp.audience) == (
        "rep-cmp",
        "rep-old",
        "technical",
    )
    loads = [r.body["model"] for r in double.chat_requests() if r.path == "/api/generate"]
    assert sorted(loads) == ["fast:latest", "third:latest"]
    assert all(r["metrics"]["warmup_load_s"] is not None for r in comp.results)
