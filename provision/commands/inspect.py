"""`sdprov inspect FILE... [--json]`: what each file is, from its own bytes.

Prints, per file, its kind (and variant: LoRA type, ControlNet type, encoder), base family,
format, flags and the evidence that decided them; pickles are also scanned. The report is the
command's output, so it goes to stdout (messages and errors go to stderr); `--json` prints one
`{"files": [...]}` object.
Exit 0 when every file was read and every pickle is safe, 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.errors import InspectionError

if TYPE_CHECKING:
    from provision.console import Console
    from provision.inspection import FileReport, PickleVerdict


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="show what model files are (kind, family, format) from their own bytes",
        description="Read each file's header (never its data, never unpickling) and show its "
        "kind, LoRA variant, base family, format and the evidence for them. Pickle files are "
        "also scanned for imports outside WebUI's safe set.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from provision.inspection import inspect_file, scan_pickle  # not at start-up

    # picklescan logs every import it dislikes as a warning; the verdict below says it once.
    logging.getLogger("picklescan").setLevel(logging.CRITICAL)
    results: list[dict[str, Any]] = []
    code = 0
    for path in args.files:
        try:
            report = inspect_file(path)
            verdict = scan_pickle(path) if report.format == "pickle" else None
        except InspectionError as exc:
            console.error(exc.render())
            results.append({"path": str(path), "error": exc.message})
            code = 1
            continue
        entry = report.to_json()
        if verdict is not None:
            entry["pickle_scan"] = verdict.to_json()
            if not verdict.safe:
                console.error(verdict.message)
                code = 1
        results.append(entry)
        if not args.json:
            print(_render(report, verdict), flush=True)
    if args.json:
        console.emit_json({"files": results})
    return code


def _render(report: FileReport, verdict: PickleVerdict | None) -> str:
    kind = f"{report.kind} ({report.variant})" if report.variant else report.kind
    rows = [
        ("kind", kind),
        ("family", report.family),
        ("format", report.format),
    ]
    if report.flags:
        rows.append(("flags", ", ".join(report.flags)))
    if verdict is not None:
        rows.append(("pickle", ("safe: " if verdict.safe else "UNSAFE: ") + verdict.message))
    for key in ("ss_sd_model_name", "modelspec.title", "sd_checkpoint_name"):
        if key in report.metadata:
            rows.append((key, report.metadata[key]))
    width = max(len("evidence"), *(len(name) for name, _ in rows))
    lines = [report.path]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    for i, item in enumerate(report.evidence):
        lines.append(f"  {'evidence' if i == 0 else '':<{width}}  - {item}")
    return "\n".join(lines) + "\n"
