"""``python -m llm compare REPORT_ID --model A --model B [...]``: compare 2–4 models and save it.

The models stream at the same time; each answer is printed whole when it ends (text), or all of
them in one final JSON object ``{"id", "results": [{model, text, metrics, unsupported_claims}]}``.
Exit codes follow llm.cli: 2 bad input (unknown report or model, fewer than 2 or more than 4
models), 1 Ollama unavailable or an answer failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from llm.compare import (
    MAX_MODELS,
    MIN_MODELS,
    ComparisonRun,
    check_capacity,
    check_models,
    limits_from_env,
    load_subject,
    result_json,
)
from llm.prompt import AUDIENCES

if TYPE_CHECKING:
    from llm.cli import CliContext

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def _cmd_compare(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run the comparison, print the answers (or one JSON object) and save it."""
    svc = ctx.services
    subject = load_subject(svc.store, args.report_id, args.base)
    check_models(args.model)  # count and duplicates, before Ollama is asked anything
    models = check_models(args.model, svc.llm.list_models())
    capacity = check_capacity(svc.llm, models, limits_from_env(os.environ))
    for reason in capacity.reasons:
        ctx.err.write(f"warning: {reason}\n")
    run = ComparisonRun(
        svc.llm,
        svc.store,
        subject,
        models,
        args.audience,
        warmup=args.warmup,
        owner=svc.config.user,
    ).start()
    interrupted = False
    try:
        _report_progress(run, ctx)
    except KeyboardInterrupt:
        interrupted = True
        run.stop_all()
        run.wait()
    comp = run.comparison
    assert comp is not None  # set before wait() returns
    if args.format == "json":
        obj = {"id": comp.id, "results": [result_json(r) for r in comp.results]}
        ctx.out.write(json.dumps(obj) + "\n")
    else:
        for r in comp.results:
            ctx.out.write(f"== {r['model']} ({r['status']}) ==\n{r['text']}\n\n")
    ctx.out.flush()
    for r in comp.results:
        for claim in r.get("unsupported_claims", ()):
            ctx.err.write(
                f"{r['model']}: not in the scan data — verify: {claim['kind']} {claim['value']}\n"
            )
        if r.get("error"):
            ctx.err.write(f"{r['model']}: {r['error']}\n")
    if run.save_error:
        ctx.err.write(f"error: {run.save_error}\n")
        return EXIT_FAILED
    ctx.err.write(f"Saved comparison {comp.id}.\n")
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r["status"] == "complete" for r in comp.results) else EXIT_FAILED


def _report_progress(run: ComparisonRun, ctx: CliContext) -> None:
    """Say on stderr when each model finishes, in the order they finish."""
    told: set[str] = set()
    while not run.wait(0.1):
        for view in run.views():
            if view.phase in ("complete", "stopped", "failed") and view.model not in told:
                told.add(view.model)
                ctx.err.write(f"{view.model}: {view.phase}\n")
                ctx.err.flush()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``compare`` subcommand to the parser of ``python -m llm``."""
    p = sub.add_parser(
        "compare",
        help=f"stream {MIN_MODELS}-{MAX_MODELS} models' summaries of a report at once and save it",
    )
    p.add_argument("report_id", metavar="REPORT_ID")
    p.add_argument(
        "--model",
        action="append",
        required=True,
        help=f"an installed model; give it {MIN_MODELS} to {MAX_MODELS} times",
    )
    p.add_argument("--audience", choices=AUDIENCES, default="executive")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--base", metavar="OLD_REPORT_ID", help="compare summaries of the changes since this report"
    )
    p.add_argument(
        "--warmup",
        action="store_true",
        help="load every model before the timed run (load time is reported apart)",
    )
    p.set_defaults(func=_cmd_compare)
