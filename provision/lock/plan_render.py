"""`sdprov plan` output: plain text for a terminal, Markdown for a pull-request comment (a
summary line, a table, the details collapsed), JSON for tools. Deterministic: the same two
locks always give the same bytes (golden-file tested)."""

from __future__ import annotations

import json

from provision.console import human_bytes
from provision.lock.diff import Change, LockPlan, PlanItem

MARKS: dict[Change, str] = {
    Change.ADDED: "+",
    Change.CHANGED: "~",
    Change.MOVED: ">",
    Change.REMOVED: "-",
    Change.ADOPT: "=",
    Change.CONFLICT: "!",
    Change.UNCHANGED: " ",
}


def summary(plan: LockPlan) -> str:
    counts = plan.counts()
    parts = [f"{n} {change}" for change, n in counts.items() if n and change != "unchanged"]
    text = ", ".join(parts) if parts else "no changes"
    text += f"; {human_bytes(plan.download_bytes)} to download"
    if plan.remove_bytes:
        text += f", {human_bytes(plan.remove_bytes)} removed"
    if counts["unchanged"]:
        text += f"; {counts['unchanged']} unchanged"
    return text


def _version(item: PlanItem) -> str:
    old = item.old.version if item.old else ""
    new = item.new.version if item.new else ""
    if item.change is Change.CHANGED and old != new:
        return f"{old} → {new}"
    return new or old


def _where(item: PlanItem) -> str:
    if item.old and item.new and item.old.path != item.new.path:
        return f"{item.old.path} → {item.new.path}"
    return item.path


def _size(item: PlanItem) -> str:
    side = item.new or item.old
    assert side is not None
    return human_bytes(side.size)


def render_text(plan: LockPlan) -> str:
    lines = [f"plan: {plan.lockfile} against {plan.base}"]
    for it in plan.changes:
        lines.append(
            f"  {MARKS[it.change]} {it.change.value:<9} {it.kind:<12} {it.family:<6} "
            f"{_where(it)}  {_version(it)} ({_size(it)})" + (f"  [{it.note}]" if it.note else "")
        )
    lines.append(summary(plan))
    lines.extend(f"warning: {w}" for w in plan.warnings)
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: LockPlan) -> str:
    out = [
        f"### sdprov plan: `{plan.lockfile}`",
        "",
        f"**{summary(plan)}** (against `{plan.base}`)",
        "",
    ]
    if plan.changes:
        out += ["| | Model | Kind | Family | Version | Size |", "|---|---|---|---|---|---|"]
        for it in plan.changes:
            out.append(
                f"| {it.change.value} | `{_cell(it.name)}` | {it.kind} | {it.family} | "
                f"{_cell(_version(it))} | {_size(it)} |"
            )
        out.append("")
    if plan.warnings:
        out += [f"> **Warning:** {_cell(w)}" for w in plan.warnings]
        out.append("")
    if plan.changes:
        out += ["<details><summary>Files and checksums</summary>", ""]
        for it in plan.changes:
            old = f"`{it.old.sha256[:12]}`" if it.old else "none"
            new = f"`{it.new.sha256[:12]}`" if it.new else "none"
            note = f"; {it.note}" if it.note else ""
            download = f", downloads {human_bytes(it.download_bytes)}" if it.download_bytes else ""
            out.append(f"- `{_cell(_where(it))}`: sha256 {old} → {new}{download}{note}")
        out += ["", "</details>", ""]
    return "\n".join(out)


def render_json(plan: LockPlan) -> str:
    return json.dumps(plan.to_json(), indent=2, sort_keys=True) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}
