"""ScanScribe against a real model (Gemma 3 270M in llama.cpp behind Ollama's API; a test adapter,
not Ollama): the summarize command line, Stop, the Summarize page and Compare, on real reports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import ui
from store.records import Summary
from store.sqlite import SQLiteStore
from tests.fixtures_real_model import CORPUS, RealModel

pytestmark = pytest.mark.real_model

ROOT = Path(__file__).resolve().parent.parent
REPORT_XML = CORPUS / "nickdkelly_homesec__nmap_scan.xml"  # 4 hosts, 12 open ports


def _env(db_path: Path, real_model: RealModel) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCANSCRIBE_", "OLLAMA_"))}
    env.update(
        SCANSCRIBE_DB=str(db_path),
        OLLAMA_HOST=real_model.url,
        SCANSCRIBE_OLLAMA_TIMEOUT="120",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def _cli(args: list[str], env: dict[str, str], module: str = "llm") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _summarize(
    report_id: str, model: str, env: dict[str, str], *, stop: bool = False
) -> tuple[str, int, dict[str, Any]]:
    """Run ``python -m llm summarize --format json``; with ``stop``, interrupt it (SIGINT, the
    command line's Stop) once the answer has begun. Returns stdout, the exit code, the object."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm", "summarize", report_id, "--model", model, "--format", "json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.read(1)
        assert first and proc.poll() is None, "text arrived only at the end"
        if stop:
            proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        code = proc.wait(120)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert rest.strip(), err
    return first + rest, code, json.loads(rest.strip().splitlines()[-1])


def _saved(db_path: Path, summary_id: str) -> Summary:
    store = SQLiteStore(db_path)
    try:
        return store.get_summary(summary_id)
    finally:
        store.close()


@pytest.fixture
def imported(db_path: Path, real_model: RealModel) -> tuple[str, dict[str, str]]:
    """A real nmap report imported through the command line; its id and the CLI environment."""
    env = _env(db_path, real_model)
    (row,) = _cli(["import", str(REPORT_XML), "--format", "json"], env, "scanner")["imported"]
    return str(row["id"]), env


def assert_real_metrics(metrics: dict[str, Any], num_predict: int) -> None:
    """Token counts above zero, and a speed the model could really have had as seen here."""
    assert metrics["prompt_tokens"] > 100 and 0 < metrics["output_tokens"] <= num_predict
    tps = metrics["tokens_per_s"]
    # Gemma 3 270M on one CPU core: about 10 to 100 tokens a second (less on a busy machine),
    # never thousands.
    assert 0 < tps < 1500, tps
    # The client saw the tokens arrive over at least most of the time the server says it spent.
    streamed = metrics["total_s"] - metrics["ttft_s"]
    server = (metrics["output_tokens"] - 1) / tps
    assert streamed >= 0.7 * server - 0.05, (streamed, server)
    assert streamed <= 3 * metrics["output_tokens"] / tps + 5.0, (streamed, server)
    assert metrics["chunks"] >= 10  # many pieces, not one block at the end


def test_summarize_command_streams_a_real_summary_with_real_metrics(
    imported: tuple[str, dict[str, str]], real_model: RealModel, db_path: Path
) -> None:
    report_id, env = imported
    out, code, obj = _summarize(report_id, real_model.model, env)
    assert code == 0 and obj["status"] == "complete" and obj["model"] == real_model.model
    assert out.startswith(obj["text"]) and obj["text"].strip()
    assert obj["metrics"]["done_reason"] in ("stop", "length")
    assert_real_metrics(obj["metrics"], real_model.num_predict)
    saved = _saved(db_path, obj["id"])
    assert saved.text == obj["text"] and saved.status == "complete"
    assert saved.fact_check["checked"] == len(saved.fact_check["supported"]) + len(
        saved.fact_check["unsupported"]
    )


def test_stop_mid_generation_keeps_the_partial_text(
    imported: tuple[str, dict[str, str]], real_model: RealModel, db_path: Path
) -> None:
    report_id, env = imported
    out, code, obj = _summarize(report_id, real_model.model, env, stop=True)
    assert code == 130 and obj["status"] == "stopped"
    assert obj["text"] and out.startswith(obj["text"])
    # Stopped before the model finished: no final statistics, fewer tokens than a full answer.
    assert obj["metrics"]["output_tokens"] is None and obj["metrics"]["done_reason"] == ""
    assert obj["metrics"]["chunks"] < real_model.num_predict
    saved = _saved(db_path, obj["id"])
    assert saved.status == "stopped" and saved.text == obj["text"]


@pytest.fixture
def page_env(
    monkeypatch: pytest.MonkeyPatch,
    imported: tuple[str, dict[str, str]],
    db_path: Path,
    real_model: RealModel,
) -> Iterator[str]:
    """The Summarize page pointed at the imported report and at the real model."""
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", real_model.url)
    monkeypatch.setenv("SCANSCRIBE_OLLAMA_TIMEOUT", "120")
    monkeypatch.delenv("SCANSCRIBE_STORE", raising=False)
    ui._services.clear()
    yield imported[0]
    ui._services.clear()


def test_summarize_page_streams_a_real_summary(
    page_env: str, db_path: Path, real_model: RealModel
) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "summarize.py"), default_timeout=120).run()
    at.selectbox(key="sum_model").set_value(real_model.model)
    at.button(key="sum_go").click().run()
    assert not at.exception, at.exception
    shown = "\n".join(str(e.value) for e in [*at.markdown, *at.caption, *at.success, *at.info])
    assert "Complete." in shown, shown
    labels = {m.label: m.value for m in at.metric}
    assert int(labels["Prompt tokens"]) > 100 and int(labels["Output tokens"]) > 0
    assert 0 < float(labels["Tokens/s"]) < 1500
    store = SQLiteStore(db_path)
    try:
        (saved,) = store.list_summaries(page_env)
    finally:
        store.close()
    assert saved.status == "complete" and saved.model == real_model.model
    assert saved.text.strip() and saved.text.strip()[:40] in shown.replace("\\", "")
    assert_real_metrics(saved.metrics, real_model.num_predict)


def test_compare_two_model_names_on_the_real_model(
    imported: tuple[str, dict[str, str]], real_model: RealModel, db_path: Path
) -> None:
    report_id, env = imported
    models = [real_model.model, real_model.alt]
    argv = ["compare", report_id, "--model", models[0], "--model", models[1], "--format", "json"]
    obj = _cli(argv, env)
    results = {r["model"]: r for r in obj["results"]}
    assert sorted(results) == sorted(models)
    for r in results.values():
        assert r["status"] == "complete" and r["text"].strip()
        assert_real_metrics(r["metrics"], real_model.num_predict)
    store = SQLiteStore(db_path)
    try:
        saved = store.get_comparison(obj["id"])
    finally:
        store.close()
    assert [r["model"] for r in saved.results] == models
    assert {r["text"] for r in saved.results} == {r["text"] for r in results.values()}


def test_a_slash_24_report_is_summarized_from_under_2000_prompt_tokens(
    tmp_path: Path, real_model: RealModel
) -> None:
    """Prompt economy, counted by the model itself: the /24 corpus report (53 hosts up, 126 open
    ports) is sent as a digest of its findings, with every critical and high one still named."""
    from llm.prompt import build_prompt
    from scanner.parser import parse_report
    from scanner.risk import port_risk

    xml = CORPUS / "phage__nmap-2016-04-10-11-36-46.xml"
    report = parse_report(xml.read_bytes(), report_id="rep-phage")
    severe = [
        (h.address, p.port)
        for h in report.hosts
        for p in h.open_ports
        if port_risk(p, h).level in ("critical", "high")
    ]
    assert len(severe) == 8
    facts = build_prompt(report).facts
    for address, port in severe:
        assert f"host {address} port {port}/tcp" in facts, (address, port)
    store = SQLiteStore(tmp_path / "p.db")
    store.save_report(report)
    store.close()
    env = _env(tmp_path / "p.db", real_model)
    _, code, result = _summarize("rep-phage", real_model.model, env)
    assert code == 0
    tokens = result["metrics"]["prompt_tokens"]
    print(f"/24 report: {tokens} prompt tokens, first token after {result['metrics']['ttft_s']} s")
    assert 500 < tokens <= 2000
    assert result["left_out"]["hosts"] > 0  # and the command line says what was condensed
