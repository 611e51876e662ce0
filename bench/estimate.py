"""`mxgate estimate` on a big synthetic Postfix log: lines/s and peak RSS, against a baseline.

    .venv/bin/python -m bench.estimate --size-mb 1024 [--path /tmp/x.maillog] [--keep]

Writes a syslog-format Postfix log of about ``--size-mb`` MB (a seeded mix: TLS and
plaintext sessions, multi-recipient messages, refused and relay recipients, rejects
at DATA, sessions without mail, failed STARTTLS; a million sender domains and /24s
so the sketches leave their exact range), then runs, one after another on the same
file: the baseline (reading every line through the same reader, no parsing) and
`mxgate estimate --json`. Each runs as a child process; peak RSS is its ru_maxrss.
The file is deleted afterwards unless ``--keep``. Not a unit test: numbers only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

BASELINE = """
import sys
from mxgate_gateway.estimate.reader import open_log
n = 0
for name in sys.argv[1:]:
    log = open_log(name)
    for _ in log.lines():
        n += 1
print(n)
"""


def _session(rng: random.Random, pid: int, qid: int, t: str) -> list[str]:
    host = f"h{rng.randrange(1 << 20)}.example"
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    sender = f"s{rng.randrange(1000)}@d{rng.randrange(1_000_000)}.example"
    pre = f"Dec  1 {t} mx postfix/smtpd[{pid}]: "
    out = [f"{pre}connect from {host}[{ip}]"]
    kind = rng.random()
    tls = rng.random() < 0.6
    if kind < 0.05:  # failed STARTTLS
        out += [
            f"{pre}SSL_accept error from {host}[{ip}]: -1",
            f"{pre}lost connection after STARTTLS from {host}[{ip}]",
            f"{pre}disconnect from {host}[{ip}] ehlo=1 starttls=0/1 commands=1/2",
        ]
        return out
    if tls:
        out.append(
            f"{pre}Anonymous TLS connection established from {host}[{ip}]: TLSv1.3 with cipher"
            " TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature"
            " RSA-PSS (2048 bits) server-digest SHA256"
        )
    if kind < 0.15:  # no mail
        out.append(f"{pre}disconnect from {host}[{ip}] ehlo=1 quit=1 commands=2")
        return out
    if kind < 0.25:  # relay attempt
        out.append(
            f"{pre}NOQUEUE: reject: RCPT from {host}[{ip}]: 554 5.7.1 <x@relay.example>: Relay"
            f" access denied; from=<{sender}> to=<x@relay.example> proto=ESMTP helo=<{host}>"
        )
        out.append(f"{pre}disconnect from {host}[{ip}] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4")
        return out
    q = f"{qid:011X}"
    n = rng.randint(1, 3)
    out.append(f"{pre}{q}: client={host}[{ip}]")
    if rng.random() < 0.2:
        out.append(
            f"{pre}{q}: reject: RCPT from {host}[{ip}]: 550 5.1.1 <nosuch@mx.example>: Recipient"
            f" address rejected: unknown; from=<{sender}> to=<nosuch@mx.example> proto=ESMTP"
            f" helo=<{host}>"
        )
    out.append(f"Dec  1 {t} mx postfix/cleanup[7]: {q}: message-id=<{qid}@{host}>")
    if rng.random() < 0.1:
        out.append(
            f"Dec  1 {t} mx postfix/cleanup[7]: {q}: reject: header Subject: buy from"
            f" {host}[{ip}]; from=<{sender}> to=<u@mx.example> proto=ESMTP helo=<{host}>:"
            " 5.7.1 spam"
        )
    else:
        out.append(
            f"Dec  1 {t} mx postfix/qmgr[8]: {q}: from=<{sender}>, size=4000, nrcpt={n}"
            " (queue active)"
        )
        for i in range(n):
            out.append(
                f"Dec  1 {t} mx postfix/virtual[9]: {q}: to=<u{i}@mx.example>, relay=virtual,"
                " delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)"
            )
        out.append(f"Dec  1 {t} mx postfix/qmgr[8]: {q}: removed")
    out.append(f"{pre}disconnect from {host}[{ip}] ehlo=1 mail=1 rcpt={n} data=1 commands=5")
    return out


def generate(path: Path, size: int, seed: int = 9) -> int:
    """Write about ``size`` bytes of log to ``path``; return the line count."""
    rng = random.Random(seed)
    lines = written = 0
    pid, qid = 1000, 1 << 36
    with path.open("w", buffering=1 << 22) as f:
        while written < size:
            t = f"{(lines // 36000) % 24:02d}:{(lines // 600) % 60:02d}:{(lines // 10) % 60:02d}"
            chunk = []
            for _ in range(200):
                pid, qid = pid + 1, qid + 1
                chunk += _session(rng, pid % 4_000_000 + 100, qid, t)
            text = "\n".join(chunk) + "\n"
            f.write(text)
            written += len(text)
            lines += len(chunk)
    return lines


def measure(argv: list[str], out: Path) -> tuple[float, float, int, str]:
    """Run ``argv`` as a child; (wall s, its CPU s, its own peak RSS in KiB, stdout)."""
    started = time.monotonic()
    with out.open("w") as sink:
        proc = subprocess.Popen(argv, stdout=sink)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    if proc.returncode:
        raise SystemExit(f"{argv[:4]} exited {proc.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out.read_text()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.estimate")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--path", type=Path, default=Path("/tmp/mxgate-estimate-bench.maillog"))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    try:
        started = time.monotonic()
        lines = generate(args.path, args.size_mb << 20)
        size = args.path.stat().st_size
        print(
            f"generated {size / 2**20:,.0f} MiB, {lines:,} lines in"
            f" {time.monotonic() - started:.0f} s",
            flush=True,
        )
        py = sys.executable
        result = args.path.with_suffix(".out")
        base_s, base_cpu, base_rss, _ = measure([py, "-c", BASELINE, str(args.path)], result)
        est_s, est_cpu, est_rss, out = measure(
            [
                py,
                "-m",
                "mxgate_gateway.cli",
                "estimate",
                "--json",
                "--progress",
                "never",
                str(args.path),
            ],
            result,
        )
        result.unlink()
        doc = json.loads(out)
        period = doc["since_start"]
        for name, wall, cpu, rss in (
            ("baseline (read lines only)", base_s, base_cpu, base_rss),
            ("mxgate estimate", est_s, est_cpu, est_rss),
        ):
            print(
                f"{name:27} wall {wall:6.1f} s ({lines / wall:>9,.0f} lines/s)"
                f"  CPU {cpu:6.1f} s ({lines / cpu:>9,.0f} lines/s)  peak RSS {rss / 1024:5.1f} MiB"
            )
        print(f"  estimate / baseline: {est_cpu / base_cpu:.1f}x the CPU time")
        print(
            f"  sessions {sum(period['sessions'].values()):,}, messages"
            f" {sum(period['messages'].values()):,}, sender domains ~"
            f"{period['if_starttls_required']['sender_domains']:,}, unparsed"
            f" {doc['estimate']['unparsed_lines']}, unattributed {doc['estimate']['unattributed']}"
        )
    finally:
        if not args.keep:
            args.path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
