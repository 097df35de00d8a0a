"""Markdown tables of a benchmark run (see run.py)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_report", "format_seconds"]

BASE = "mixedmodels"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.3g} s"


class _Notes:
    """Numbered footnotes, one per distinct text."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def ref(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"


def _time_cell(res: dict | None, base: dict | None, notes: _Notes) -> str:
    if res is None:
        return "-"
    if res["status"] == "na":
        return "n/a " + notes.ref(f"{res['tool']}: {res['reason']}")
    if res["status"] == "error":
        return "error " + notes.ref(f"{res['tool']} on {res['case']}: {res['reason']}")
    if res["median_s"] is None:
        if res["first_s"] is not None:
            return f"{format_seconds(res['first_s'])} (1 run, then timeout)"
        return f"timeout (> {res['timeout']:.0f} s)"
    cell = format_seconds(res["median_s"])
    if res["status"] == "timeout":
        cell += f" ({res['nruns']} runs, then timeout)"
    if base is not None and base.get("median_s") and res["tool"] != BASE:
        cell += f" (×{res['median_s'] / base['median_s']:.3g})"
    return cell


def _cell(res: dict | None, key: str, fmt: str) -> str:
    if res is None or res.get(key) is None:
        return "-"
    return format(res[key], fmt)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _header(info: dict, tools: list[str], results: list[dict]) -> list[str]:
    envs: dict[str, dict] = {}
    for res in results:
        if res.get("env") and res["tool"] not in envs:
            envs[res["tool"]] = res["env"]
    lines = [
        f"# Benchmarks {info['date']}{' (quick)' if info.get('quick') else ''}",
        "",
        f"- Machine: {info.get('cpu')}, {info.get('cores')} cores, {info.get('memory_gb')} GB; "
        f"load average {info['load_start'][0]:.1f} at start, {info['load_end'][0]:.1f} at end "
        "(the machine was shared: read small differences as noise).",
        f"- mixedmodels at commit {info.get('commit')}{' with uncommitted changes in src/' if info.get('dirty') else ''}; "
        f"Python {info.get('python')}; OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}, "
        f"OPENBLAS_L2_SIZE={info['OPENBLAS_L2_SIZE']}; BLAS threads {info.get('blas_threads')}.",
        f"- Protocol: a fresh process per (tool, case); one warm-up fit, then {info['repeats']} timed fit(s)"
        + (f", in {info['rounds']} interleaved rounds (timed fits pooled)" if info.get("rounds", 1) > 1 else "")
        + f"; the median is shown. Timeout {info['timeout']:.0f} s per (tool, case) and round, warm-up included. "
        "The load column is the range of the 1-minute load average over the case's runs (2 cores: above 2, "
        "tools shared the cores with other work).",
        "- Ratio (×r) = tool time / mixedmodels time: above 1, mixedmodels is faster.",
        "- glmm is called with satterthwaite=False and anova_test='Wald' (the fit alone, like lme4's lmer/glmer); "
        "lme4, mixedlm and statsmodels with their defaults.",
    ]
    for tool in tools:
        env = envs.get(tool)
        if env:
            extra = f"; R {env.get('R')}; BLAS {env.get('blas_lib') or env.get('blas')}" if tool == "lme4" else ""
            blas = f"; {', '.join(env['blas'])}" if isinstance(env.get("blas"), list) else ""
            lines.append(f"- {tool} {env.get('version')}{extra}{blas}")
    for tool, why in (info.get("missing_tools") or {}).items():
        lines.append(f"- {tool}: skipped, {why}")
    return lines


def write_report(
    outdir: Path, stem: str, cases: list, tools: list[str], results: list[dict], info: dict, latest: bool
) -> Path:
    """Write ``<stem>.md`` and ``<stem>.json`` under ``outdir`` (and ``latest.md``); return the markdown path."""
    outdir.mkdir(parents=True, exist_ok=True)
    by = {(r["case"], r["tool"]): r for r in results}
    notes = _Notes()
    shown = [t for t in tools if any(r["tool"] == t for r in results)]
    nrows = {r["case"]: r["env"].get("nrows") for r in results if r.get("env")}

    time_rows, first_rows, mem_rows, eval_rows = [], [], [], []
    for case in cases:
        base = by.get((case.name, BASE))
        rows = f"{nrows.get(case.name, 0):,}" if nrows.get(case.name) else "?"
        loads = [x for r in results if r["case"] == case.name for x in r.get("load", [])]
        load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "-"
        label = [case.name, case.kind, rows, load]
        time_rows.append(label + [_time_cell(by.get((case.name, t)), base, notes) for t in shown])
        first_rows.append([case.name] + [format_seconds((by.get((case.name, t)) or {}).get("first_s")) for t in shown])
        mem_rows.append([case.name] + [_mem_cell(by.get((case.name, t))) for t in shown])
        eval_rows.append([case.name] + [_eval_cell(by.get((case.name, t))) for t in shown])

    lines = _header(info, tools, results)
    lines += ["", "## Time per fit (median) and ratio to mixedmodels", ""]
    lines += _table(["case", "fit", "rows", "load"] + shown, time_rows)
    lines += ["", "## First (warm-up) fit, including lazy imports and first-call costs", ""]
    lines += _table(["case"] + shown, first_rows)
    lines += [
        "",
        "## Peak memory of the fits (MB above the resident set once the tool and the data were loaded; process peak in brackets)",
        "",
        "Includes what the first fit imports lazily inside the tool (tens of MB for the Python tools).",
        "",
    ]
    lines += _table(["case"] + shown, mem_rows)
    lines += ["", "## Objective evaluations / -2 log-likelihood (REML criterion for REML fits)", ""]
    lines += [
        "Evaluations as each tool counts them (lme4: `m@optinfo$feval`, the last optimizer stage for glmer; "
        "mixedmodels: objective evaluations + gradient evaluations (g), start candidates included, checks not). "
        "A -2 log L that differs from the others by more than ~0.01 means a different optimum, "
        "or (for glmer across tools) a different constant in the likelihood.",
        "",
    ]
    lines += _table(["case"] + shown, eval_rows)
    lines += _footer(cases, results, notes)
    text = "\n".join(lines) + "\n"
    out = outdir / f"{stem}.md"
    out.write_text(text)
    (outdir / f"{stem}.json").write_text(json.dumps({"info": info, "results": results}, indent=1, default=str))
    if latest:
        (outdir / "latest.md").write_text(text)
    return out


def _mem_cell(res: dict | None) -> str:
    if res is None or res.get("peak_delta_mb") is None:
        return "-"
    return f"{res['peak_delta_mb']:,.0f} ({res['peak_mb']:,.0f})"


def _eval_cell(res: dict | None) -> str:
    if res is None or res.get("m2ll") is None:
        return "-"
    feval = res.get("feval")
    gradients = f" + {res['geval']} g" if res.get("geval") else ""
    flag = "" if res.get("converged") in (True, None) else " (not converged)"
    return f"{feval if feval is not None else '?'}{gradients} / {res['m2ll']:.4f}{flag}"


def _footer(cases: list, results: list[dict], notes: _Notes) -> list[str]:
    lines = ["", "## Notes", ""]
    for case in cases:
        lines.append(
            f"- {case.name}: `{case.formula}`"
            + (f" ({case.family})" if case.family != "gaussian" else "")
            + (f"; {case.note}" if case.note else "")
        )
    for res in results:
        if res.get("warnings"):
            lines.append(
                f"- warnings from {res['tool']} on {res['case']}: "
                + "; ".join(w.replace("|", "/") for w in res["warnings"][:3])
            )
    if notes.texts:
        lines.append("")
        lines += [f"[{i + 1}] {text.replace('|', '/')}" for i, text in enumerate(notes.texts)]
    return lines
