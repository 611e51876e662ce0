"""Render a loss report snapshot (one gateway's or merged) as a plain-text table.

Pure: a dict in, a string out, deterministic for identical input. It must not
fetch, merge or recompute anything: every number shown is read from the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mxgate_gateway.mtasts.render import render_lines as tlsrpt_lines

_TLS_NAMES = {"none": "plaintext"}


def _row(cells: Sequence[object], widths: Sequence[int]) -> str:
    first, *rest = cells
    out = f"  {first!s:<{widths[0]}}"
    for cell, width in zip(rest, widths[1:], strict=True):
        out += f"  {cell!s:>{width}}"
    return out.rstrip()


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return [_row(header, widths), *(_row(r, widths) for r in rows)]


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def _by_tls(title: str, total: Mapping[str, int], window: Mapping[str, int], w: str) -> list[str]:
    keys = list(total) + [k for k in window if k not in total]
    s_all, w_all = sum(total.values()), sum(window.values())
    rows: list[list[object]] = [
        [
            _TLS_NAMES.get(k, k),
            total.get(k, 0),
            _pct(total.get(k, 0), s_all),
            window.get(k, 0),
            _pct(window.get(k, 0), w_all),
        ]
        for k in keys
    ]
    rows.append(["total", s_all, "", w_all, ""])
    return _table([title, "since start", "%", w, "%"], rows)


def _counterfactual(period: Mapping[str, Any], label: str) -> list[str]:
    cf = period["if_starttls_required"]
    up = cf["upstream"]
    approx_senders = "" if cf.get("sender_domains_exact", cf["exact"]) else "~"
    approx_networks = "" if cf.get("client_networks_exact", cf["exact"]) else "~"
    refused, total = cf["refused_messages"], cf["of_messages"]
    judged = up["accepted"] + up["rejected"]
    return [
        f"  {label}: {refused} of {total} messages ({cf['percent']:.1f}%) from"
        f" {approx_senders}{cf['sender_domains']} distinct sender domains and"
        f" {approx_networks}{cf['client_networks']} client networks would have been refused.",
        f"    At the upstream those plaintext messages were: {up['accepted']} accepted,"
        f" {up['rejected']} rejected ({_pct(up['rejected'], judged)} of judged),"
        f" {up['unknown']} without a verdict.",
    ]


def _rules(total: Sequence[Mapping[str, Any]], window: Sequence[Mapping[str, Any]]) -> list[str]:
    recent = {(r["rule"], r["mode"]): r for r in window}
    rows: list[list[object]] = []
    for r in total:
        w = recent.get((r["rule"], r["mode"]), {})
        rows.append(
            [
                r["rule"],
                r["mode"],
                r["accept"],
                r["refuse"],
                r["would_refuse"],
                w.get("refuse", 0),
                w.get("would_refuse", 0),
            ]
        )
    if not rows:
        return ["  (no policy decisions yet)"]
    header = ["rule", "mode", "accepted", "refused", "would refuse", "refused*", "would*"]
    return _table(header, rows)


def _top(title: str, entries: Sequence[Mapping[str, Any]]) -> list[str]:
    if not entries:
        return [f"  {title}: none"]
    rows = [
        [e["name"], e["messages"], f"±{e['error']}" if e["error"] else "exact"] for e in entries
    ]
    return _table([title, "messages", "accuracy"], rows)


def render_table(snapshot: Mapping[str, Any]) -> str:
    """The report as text: TLS mix, the counterfactual, per-rule counts and top lists."""
    total, window = snapshot["since_start"], snapshot["window"]
    minutes = snapshot["window_minutes"]
    w = f"last {minutes} min"
    gateways = snapshot["gateways"]
    lines = [
        f"mxgate loss report: {gateways} gateway{'s' if gateways != 1 else ''}",
        "",
        *_by_tls("sessions", total["sessions"], window["sessions"], w),
        "",
        *_by_tls("messages", total["messages"], window["messages"], w),
        "",
        "If STARTTLS were required for everyone:",
        *_counterfactual(total, "since start"),
        *_counterfactual(window, w),
        "",
        f"Policy decisions per rule (* = {w}):",
        *_rules(total["rules"], window["rules"]),
        "",
        "Top plaintext senders since start:",
        *_top("sender domain", total["top_plaintext_sender_domains"]),
        "",
        *_top("client network", total["top_plaintext_client_networks"]),
    ]
    if "tlsrpt" in snapshot:
        lines += ["", *tlsrpt_lines(snapshot["tlsrpt"])]
    return "\n".join(lines) + "\n"
