#!/usr/bin/env python3
"""Structure of the alert rules and the Grafana dashboards (what promtool and JSON do not check).

  lint_monitoring.py

Alerts: every rule has a severity of critical or warning, a summary, a description and a runbook
that points at an existing heading of docs/operations.md.
Dashboards: valid JSON with a unique uid and title, the Prometheus data source as a variable,
unique panel ids, panels inside the 24-column grid without overlaps, every query with an
expression, and every $variable used defined (or one of Grafana's own).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "monitoring" / "alerts.yaml"
DASHBOARDS = ROOT / "monitoring" / "dashboards"
RUNBOOK = ROOT / "docs" / "operations.md"
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range", "__interval_ms", "__range_s", "__range_ms"}

problems: list[str] = []


def anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in markdown.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            found.add(slug)
    return found


def lint_alerts() -> int:
    known = anchors(RUNBOOK) if RUNBOOK.exists() else set()
    count = 0
    for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            count += 1
            name = rule["alert"]
            if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
                problems.append(f"alerts.yaml {name}: severity must be critical or warning")
            notes = rule.get("annotations", {})
            for key in ("summary", "description", "runbook"):
                if not notes.get(key):
                    problems.append(f"alerts.yaml {name}: annotation {key} missing")
            runbook = notes.get("runbook", "")
            path, _, anchor = runbook.partition("#")
            if path != "docs/operations.md" or anchor not in known:
                problems.append(f"alerts.yaml {name}: runbook {runbook!r} is not a heading of docs/operations.md")
    return count


def lint_dashboard(path: Path, uids: dict, titles: dict) -> int:
    try:
        board = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        problems.append(f"{path.name}: invalid JSON: {err}")
        return 0
    for key, seen in (("uid", uids), ("title", titles)):
        value = board.get(key)
        if not value:
            problems.append(f"{path.name}: no {key}")
        elif value in seen:
            problems.append(f"{path.name}: {key} {value!r} already used by {seen[value]}")
        else:
            seen[value] = path.name
    variables = {v["name"]: v for v in board.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource" or variables["datasource"].get("query") != "prometheus":
        problems.append(f"{path.name}: needs a 'datasource' variable of type datasource (prometheus)")
    panels = board.get("panels", [])
    flat = panels + [p for row in panels for p in row.get("panels", [])]
    ids = [p.get("id") for p in flat]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"{path.name}: panel ids missing or repeated")
    cells: dict[tuple[int, int], str] = {}
    for panel in flat:
        title = panel.get("title", "?")
        grid = panel.get("gridPos", {})
        x, y, w, h = (grid.get(k, -1) for k in ("x", "y", "w", "h"))
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > 24:
            problems.append(f"{path.name} '{title}': gridPos {grid} outside the 24-column grid")
            continue
        for cx in range(x, x + w):
            for cy in range(y, y + h):
                if (cx, cy) in cells:
                    problems.append(f"{path.name} '{title}': overlaps '{cells[(cx, cy)]}'")
                    break
                cells[(cx, cy)] = title
            else:
                continue
            break
        if panel.get("type") == "row":
            continue
        if (panel.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append(f"{path.name} '{title}': data source must be ${{datasource}}")
        targets = panel.get("targets") or []
        if not targets or any(not t.get("expr") for t in targets):
            problems.append(f"{path.name} '{title}': a query without expression")
        texts = [t.get("expr", "") for t in targets] + [t.get("legendFormat", "") for t in targets]
        for text in texts:
            for used in re.findall(r"\$\{?(\w+)\}?", text):
                if used not in variables and used not in GRAFANA_VARIABLES and not used.isdigit():
                    problems.append(f"{path.name} '{title}': ${used} is not a variable of the dashboard")
    for var in variables.values():
        q = var.get("query")
        text = q.get("query", "") if isinstance(q, dict) else str(q or "")
        for used in re.findall(r"\$\{?(\w+)\}?", text):
            if used not in variables:
                problems.append(f"{path.name} variable {var['name']}: ${used} undefined")
    return len(flat)


def main() -> int:
    alerts = lint_alerts()
    uids: dict = {}
    titles: dict = {}
    boards = sorted(DASHBOARDS.glob("*.json"))
    panels = sum(lint_dashboard(p, uids, titles) for p in boards)
    for p in problems:
        print(f"lint_monitoring: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"lint_monitoring: {alerts} alerts with severity, annotations and runbook; {len(boards)} dashboards, {panels} panels well formed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
