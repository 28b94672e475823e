"""``python -m llm``: list the installed models and summarize a report from the command line.

Exit codes: 0 done, 1 Ollama unavailable or the stream failed, 2 bad input (unknown report or
model, bad option), 130 interrupted. More subcommands register themselves from their own modules
(see llm.cli_compare).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import config as config_mod
import services as services_mod
from llm import cli_compare
from llm.errors import LLMError, ModelMissing
from llm.prompt import AUDIENCES, left_out_note
from llm.summarize import SummaryRun, prepare, recover_summaries
from services import Services
from store.base import NotFound, StoreError

EXIT_OK, EXIT_UNAVAILABLE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
CLEAR_LINE = "\r\x1b[K"  # back to the start of the line, erase it


@dataclass
class CliContext:
    """What a subcommand gets: the services and where to write."""

    services: Services
    out: TextIO
    err: TextIO


Handler = Callable[[argparse.Namespace, CliContext], int]


def _cmd_models(args: argparse.Namespace, ctx: CliContext) -> int:
    """List the installed models."""
    models = ctx.services.llm.list_models()
    if args.format == "json":
        rows = [{"name": m.name, "size": m.size, "family": m.family} for m in models]
        ctx.out.write(json.dumps(rows) + "\n")
    elif not models:
        ctx.err.write("No model is installed. Install one with `ollama pull mistral:7b`.\n")
    else:
        for m in models:
            ctx.out.write(f"{m.name}\t{m.size / 1e9:.1f} GB\t{m.parameter_size}\n")
    return EXIT_OK


def _cmd_summarize(args: argparse.Namespace, ctx: CliContext) -> int:
    """Stream a summary to stdout, save it, and report the fact check."""
    svc = ctx.services
    recover_summaries(svc.store)
    run = prepare(
        svc.store,
        svc.llm,
        args.report_id,
        args.model,
        args.audience,
        base_report_id=args.base,
        owner=svc.config.user,
    )
    interrupted = False
    try:
        run.start()
        _until_first_words(run, ctx.err)
        for piece in run.job.follow(window_s=0):
            ctx.out.write(piece)
            ctx.out.flush()
    except KeyboardInterrupt:
        if run.discarded or run.job.state == "pending":
            ctx.err.write("Interrupted before the summary started; nothing was saved.\n")
            return EXIT_INTERRUPTED
        interrupted = True
        run.stop()
    run.wait()
    summary = run.summary
    fc = run.fact_check
    unsupported = [c.to_dict() for c in fc.unsupported] if fc else []
    ctx.out.write("\n")
    if args.format == "json":
        obj = {
            "id": summary.id,
            "report_id": summary.report_id,
            "base_report_id": summary.base_report_id,
            "model": summary.model,
            "audience": summary.audience,
            "status": summary.status,
            "text": summary.text,
            "metrics": summary.metrics,
            "unsupported_claims": unsupported,
            "left_out": summary.options.get("omitted", {}),
            "error": summary.error,
        }
        ctx.out.write(json.dumps(obj) + "\n")
    ctx.out.flush()
    ctx.err.write(f"Saved summary {summary.id} ({summary.status}).\n")
    left_out = left_out_note(summary.options.get("omitted", {}))
    if left_out:
        ctx.err.write(left_out + "\n")
    for claim in unsupported:
        ctx.err.write(f"Not in the scan data — verify: {claim['kind']} {claim['value']}\n")
    if summary.error:
        ctx.err.write(summary.error + "\n")
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.status == "complete" else EXIT_UNAVAILABLE


def _until_first_words(run: SummaryRun, err: TextIO) -> None:
    """On a terminal, say what the model is doing until its first words arrive (one line,
    rewritten in place and cleared); elsewhere just wait. Ctrl-C ends the wait at once."""
    live = err.isatty()
    shown = False
    for note in run.job.waiting_notes(run.summary.model):
        if live:
            err.write(CLEAR_LINE + note)
            err.flush()
            shown = True
    if shown:
        err.write(CLEAR_LINE)
        err.flush()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="python -m llm",
        description="Summarize scan reports with a local Ollama model (OLLAMA_HOST).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="list the models installed in Ollama")
    models.add_argument("--format", choices=("text", "json"), default="text")
    models.set_defaults(func=_cmd_models)
    summ = sub.add_parser("summarize", help="stream a summary of a report and save it")
    summ.add_argument("report_id", metavar="REPORT_ID")
    summ.add_argument("--model", required=True, help="an installed model, e.g. mistral:7b")
    summ.add_argument("--audience", choices=AUDIENCES, default="executive")
    summ.add_argument("--format", choices=("text", "json"), default="text")
    summ.add_argument(
        "--base", metavar="OLD_REPORT_ID", help="summarize the changes since this earlier report"
    )
    summ.set_defaults(func=_cmd_summarize)
    cli_compare.register(sub)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    services: Services | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the command line; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    own = services is None
    try:
        svc = services or services_mod.build(config_mod.load())
    except config_mod.ConfigError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    handler: Handler = args.func
    try:
        return handler(args, CliContext(svc, out, err))
    except (NotFound, ModelMissing, ValueError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    except (LLMError, StoreError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        if own:
            svc.close()
