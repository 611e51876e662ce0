"""Render a loss report snapshot (one gateway's or merged) as a plain-text table.

Pure: a ReportDocument in, a string out, deterministic for identical input. It must not
fetch, merge or recompute anything: every number shown is read from the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mxgate_gateway.mtasts.render import render_lines as tlsrpt_lines
from mxgate_gateway.report.document import EstimateInfo, Period, ReportDocument, RuleRow, TopEntry

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


def _by_tls(
    title: str, total: Mapping[str, int], window: Mapping[str, int] | None, w: str
) -> list[str]:
    if window is None:  # an estimate: one column, the whole log
        s_all = sum(total.values())
        rows = [[_TLS_NAMES.get(k, k), n, _pct(n, s_all)] for k, n in total.items()]
        return _table([title, "in the log", "%"], [*rows, ["total", s_all, ""]])
    keys = list(total) + [k for k in window if k not in total]
    s_all, w_all = sum(total.values()), sum(window.values())
    rows = [
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


def _counterfactual(period: Period, label: str, next_hop: str) -> list[str]:
    cf = period.if_starttls_required
    up = cf.upstream
    approx_senders = "" if cf.sender_domains_exact else "~"
    approx_networks = "" if cf.client_networks_exact else "~"
    judged = up.accepted + up.rejected
    return [
        f"  {label}: {cf.refused_messages} of {cf.of_messages} messages ({cf.percent:.1f}%) from"
        f" {approx_senders}{cf.sender_domains} distinct sender domains and"
        f" {approx_networks}{cf.client_networks} client networks would have been refused.",
        f"    At the {next_hop} those plaintext messages were: {up.accepted} accepted,"
        f" {up.rejected} rejected ({_pct(up.rejected, judged)} of judged),"
        f" {up.unknown} without a verdict.",
    ]


def _rules(total: Sequence[RuleRow], window: Sequence[RuleRow] | None) -> list[str]:
    if not total:
        return ["  (no policy decisions yet)"]
    header = ["rule", "mode", "accepted", "refused", "would refuse"]
    if window is None:
        return _table(header, [[r.rule, r.mode, r.accept, r.refuse, r.would_refuse] for r in total])
    recent = {(r.rule, r.mode): r for r in window}
    rows: list[list[object]] = []
    for r in total:
        w = recent.get((r.rule, r.mode), RuleRow(r.rule, r.mode))
        rows.append([r.rule, r.mode, r.accept, r.refuse, r.would_refuse, w.refuse, w.would_refuse])
    return _table([*header, "refused*", "would*"], rows)


def _top(title: str, entries: Sequence[TopEntry]) -> list[str]:
    if not entries:
        return [f"  {title}: none"]
    rows = [[e.name, e.messages, f"±{e.error}" if e.error else "exact"] for e in entries]
    return _table([title, "messages", "accuracy"], rows)


def _estimate_header(info: EstimateInfo) -> list[str]:
    span = f"{info.first_seen or '?'} .. {info.last_seen or '?'}"
    lines = [
        f"mxgate estimate from {info.source} logs: {info.files} file(s),"
        f" {info.lines} lines ({info.unparsed_lines} not understood), {span}",
    ]
    if info.policy:
        lines.append(f"  policy replayed: {info.policy}")
    lines += [f"  note: {note}" for note in info.notes]
    if info.unattributed:
        what = ", ".join(
            f"{k.replace('_', ' ')}: {n}" for k, n in sorted(info.unattributed.items())
        )
        lines.append(f"  not attributed (the log starts or ends mid-way?): {what}")
    return lines


def render_table(doc: ReportDocument) -> str:
    """The report as text: TLS mix, the counterfactual, per-rule counts and top lists.

    An estimate (``doc.estimate``) covers a log, not a live window: its empty
    window is not shown, and the next hop is the MTA that wrote the log.
    """
    total = doc.since_start
    live = doc.estimate is None
    window = doc.window if live else None
    w = f"last {doc.window_minutes} min"
    if doc.estimate is not None:
        head = _estimate_header(doc.estimate)
        scope, hop = "in the log", "MTA"
    else:
        head = [f"mxgate loss report: {doc.gateways} gateway{'s' if doc.gateways != 1 else ''}"]
        scope, hop = "since start", "upstream"
    lines = [
        *head,
        "",
        *_by_tls("sessions", total.sessions, window.sessions if window else None, w),
        "",
        *_by_tls("messages", total.messages, window.messages if window else None, w),
        "",
        "If STARTTLS were required for everyone:",
        *_counterfactual(total, scope, hop),
        *(_counterfactual(window, w, hop) if window else []),
        "",
        f"Policy decisions per rule (* = {w}):" if window else "Policy decisions per rule:",
        *_rules(total.rules, window.rules if window else None),
        "",
        f"Top plaintext senders {scope}:",
        *_top("sender domain", total.top_plaintext_sender_domains),
        "",
        *_top("client network", total.top_plaintext_client_networks),
    ]
    if doc.tlsrpt is not None:
        lines += ["", *tlsrpt_lines(doc.tlsrpt)]
    return "\n".join(lines) + "\n"
