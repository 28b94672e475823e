"""``python -m llm``: models, summarize (text and json), exit codes, and a kill -9 mid-summary."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import config
from llm.cli import main
from llm.summarize import recover_summaries
from scanner.models import Report
from services import Services, build
from store.sqlite import SQLiteStore
from tests.ollama_double import ModelScript, OllamaDouble

ROOT = config.PROJECT_ROOT
ANSWER = "Telnet is open on 10.0.0.5 port 23; 10.0.0.66 runs SMB on 445/tcp."


def _run(argv: list[str], svc: Services) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, services=svc, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_models_lists_installed_models(llm_services: Services, ollama_double: OllamaDouble) -> None:
    ollama_double.models["mistral:7b"] = ModelScript()
    code, out, _ = _run(["models"], llm_services)
    assert code == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == ["llama3.2:latest", "mistral:7b"]
    code, out, _ = _run(["models", "--format", "json"], llm_services)
    assert [m["name"] for m in json.loads(out)] == ["llama3.2:latest", "mistral:7b"]


def test_summarize_text_prints_the_summary_and_saves_it(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(answer=ANSWER)
    code, out, err = _run(["summarize", report.id, "--model", "llama3.2"], llm_services)
    assert code == 0
    assert out == ANSWER + "\n"
    saved = llm_services.store.list_summaries(report.id)
    assert len(saved) == 1 and saved[0].text == ANSWER and saved[0].status == "complete"
    assert f"Saved summary {saved[0].id} (complete)" in err
    assert "Not in the scan data — verify: host 10.0.0.66" in err


def test_summarize_json_ends_with_one_object(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(answer=ANSWER)
    argv = ["summarize", report.id, "--model", "llama3.2", "--audience", "technical"]
    code, out, _ = _run([*argv, "--format", "json"], llm_services)
    assert code == 0
    obj = json.loads(out.splitlines()[-1])
    assert {"id", "report_id", "model", "text", "metrics", "unsupported_claims"} <= obj.keys()
    assert obj["report_id"] == report.id and obj["model"] == "llama3.2:latest"
    assert obj["text"] == ANSWER and obj["metrics"]["output_tokens"] > 0
    assert obj["unsupported_claims"] == [
        {"kind": "host", "value": "10.0.0.66"},
        {"kind": "port", "value": "445"},
    ]
    assert llm_services.store.get_summary(obj["id"]).audience == "technical"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summarize", "nope", "--model", "llama3.2"], "nope"),
        (["summarize", "r-sum", "--model", "mistral:7b"], "ollama pull mistral:7b"),
        (["summarize", "r-sum", "--model", "llama3.2", "--audience", "board"], "invalid choice"),
    ],
)
def test_bad_input_exits_2(
    llm_services: Services, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(argv, llm_services)
    assert code == 2
    assert message in err + capsys.readouterr().err
    assert llm_services.store.list_summaries() == []


def test_ollama_unavailable_exits_1(db_path: Path, report: Report) -> None:
    svc = build(config.load({"SCANSCRIBE_DB": str(db_path), "OLLAMA_HOST": "http://127.0.0.1:9"}))
    try:
        svc.store.save_report(report)
        for argv in (["models"], ["summarize", report.id, "--model", "llama3.2"]):
            code, _, err = _run(argv, svc)
            assert code == 1 and "ollama serve" in err
    finally:
        svc.close()


def test_failed_stream_exits_1_and_keeps_the_partial_text(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(chunks=["a", "b", "c"], drop_after=2)
    code, out, err = _run(
        ["summarize", report.id, "--model", "llama3.2", "--format", "json"], llm_services
    )
    assert code == 1
    obj = json.loads(out.splitlines()[-1])
    assert obj["text"] == "ab" and obj["status"] == "failed"
    assert "stopped part-way" in err


def _spawn(
    args: list[str], db: Path, double: OllamaDouble, stderr: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SCANSCRIBE_DB": str(db),
        "OLLAMA_HOST": double.url,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SCANSCRIBE_STORE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "llm", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def test_text_streams_to_stdout_as_it_arrives(
    llm_services: Services, ollama_double: OllamaDouble, report: Report, db_path: Path
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(
        chunks=["first ", *["more "] * 30], chunk_delay_s=0.03
    )
    proc = _spawn(["summarize", report.id, "--model", "llama3.2"], db_path, ollama_double)
    try:
        assert proc.stdout is not None
        first = proc.stdout.read(6)
        assert first == "first "
        assert proc.poll() is None, "text arrived only at the end"
        rest = proc.stdout.read()  # through the same buffer as the first read
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.communicate()
    assert rest.count("more") == 30


def test_kill_9_mid_summary_keeps_the_partial_text_marked_interrupted(
    llm_services: Services, ollama_double: OllamaDouble, report: Report, db_path: Path
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(chunks=["x "] * 400, chunk_delay_s=0.02)
    proc = _spawn(["summarize", report.id, "--model", "llama3.2"], db_path, ollama_double)
    store = SQLiteStore(db_path)
    try:
        deadline = time.monotonic() + 15
        saved = []
        while time.monotonic() < deadline:
            saved = [s for s in store.list_summaries(report.id) if s.text]
            if saved:
                break
            time.sleep(0.05)
        assert saved, "no partial summary was saved while streaming"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        row = store.get_summary(saved[0].id)
        assert row.status == "streaming" and row.writer_pid == proc.pid
        assert recover_summaries(store) == [row.id]
        after = store.get_summary(row.id)
        assert after.status == "interrupted" and after.text.startswith("x x")
    finally:
        proc.kill()
        proc.communicate()
        store.close()


class Terminal(io.StringIO):
    """Standard error as a terminal: the waiting note is drawn only there."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_wait_for_the_first_words_is_shown_and_then_cleared(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(answer=ANSWER, first_token_delay_s=1.2)
    out, err = io.StringIO(), Terminal()
    code = main(
        ["summarize", report.id, "--model", "llama3.2"], services=llm_services, out=out, err=err
    )
    assert code == 0 and out.getvalue() == ANSWER + "\n"
    shown = err.getvalue()
    note = "\r\x1b[KWaiting for the first words: llama3.2:latest is reading the prompt"
    assert shown.count(note) >= 2  # redrawn in place as the seconds pass
    before_saved = shown.split("Saved summary", 1)[0]
    assert before_saved.endswith("\r\x1b[K"), "the note was not cleared before the summary"
    # Not a terminal (a pipe, a log): nothing but the outcome.
    ollama_double.models["llama3.2:latest"] = ModelScript(answer=ANSWER, first_token_delay_s=0.8)
    code, _, plain = _run(["summarize", report.id, "--model", "llama3.2"], llm_services)
    assert code == 0 and "Waiting" not in plain and "\x1b" not in plain


def test_ctrl_c_while_the_model_reads_the_prompt_stops_at_once(
    llm_services: Services, ollama_double: OllamaDouble, report: Report, db_path: Path
) -> None:
    """In a terminal, the command says the model is reading the prompt; the server sends
    nothing yet, not even headers, and Ctrl-C still ends the command at once, the summary
    saved as stopped."""
    ollama_double.models["llama3.2:latest"] = ModelScript(
        answer=ANSWER, first_token_delay_s=60, headers_with_first_token=True
    )
    argv = ["summarize", report.id, "--model", "llama3.2", "--format", "json"]
    master, slave = pty.openpty()
    proc = _spawn(argv, db_path, ollama_double, stderr=slave)
    os.close(slave)
    store = SQLiteStore(db_path)
    try:
        seen = b""
        deadline = time.monotonic() + 20
        while b"Waiting for the first words" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 4096)
        assert b"llama3.2:latest is reading the prompt" in seen, seen
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        took = time.monotonic() - t0
        assert proc.returncode == 130 and took < 5, took
        obj = json.loads(out.splitlines()[-1])
        assert (obj["status"], obj["text"]) == ("stopped", "")
        assert store.get_summary(obj["id"]).status == "stopped"
    finally:
        proc.kill()
        proc.communicate()
        os.close(master)
        store.close()


HOSTILE_CONTROLS = [
    "Host 10.0.0.5 ",
    "\x1b[2J\x1b]8;;http://127.0.0.1:9/\x07click\x1b]8;;\x07",
    " \x9b31mred\r",
    "fine\x1b]52;c;ZWNobyBwd25lZA==\x07",
]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_control_characters_from_the_model_never_reach_the_terminal(
    llm_services: Services, ollama_double: OllamaDouble, report: Report, fmt: str
) -> None:
    """Escape sequences in a model's answer (clear screen, OSC 8 links, clipboard writes, C1
    CSI, carriage returns) are shown as symbols and saved that way, never acted on."""
    ollama_double.models["llama3.2:latest"] = ModelScript(chunks=HOSTILE_CONTROLS)
    argv = ["summarize", report.id, "--model", "llama3.2", "--format", fmt]
    code, out, err = _run(argv, llm_services)
    assert code == 0, err
    for bad in ("\x1b", "\x07", "\x9b", "\r"):
        assert bad not in out and bad not in err
    (saved,) = llm_services.store.list_summaries(report.id)
    for bad in ("\x1b", "\x07", "\x9b", "\r"):
        assert bad not in saved.text
    assert "␛[2J␛]8;;http://127.0.0.1:9/␇click" in saved.text
    assert saved.text.endswith("fine␛]52;c;ZWNobyBwd25lZA==␇")
    shown = json.loads(out.splitlines()[-1])["text"] if fmt == "json" else out.rstrip("\n")
    assert shown == saved.text
