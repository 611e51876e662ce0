"""A private, real Postfix instance: own config, queue and mail dirs, loopback only.

Runs ``/usr/lib/postfix/sbin/master -c DIR -d`` in the foreground as a child
process (never the system's Postfix), logging to a file we can read.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from eventually import eventually
from mtapeers.ports import free_port
from mtapeers.procs import stop_server

MASTER = Path("/usr/lib/postfix/sbin/master")
_BEGUN = re.compile(r"postfix/smtpd\[\d+\]: ([0-9A-F]+): client=")
QUEUE_DIRS = ("incoming", "active", "deferred", "hold", "maildrop")

SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def available() -> bool:
    return MASTER.exists() and shutil.which("postconf") is not None


class Postfix:
    """One Postfix instance; ``settings`` are main.cf lines on top of a safe base."""

    def __init__(self, name: str, settings: dict[str, str]) -> None:
        self.name = name
        self.root = Path(tempfile.mkdtemp(prefix=f"mxgate-pfx-{name}-"))
        self.root.chmod(0o755)  # unprivileged Postfix daemons must traverse it
        self.port = free_port()
        self.settings = settings
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def queue(self) -> Path:
        return self.root / "queue"

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    @property
    def logfile(self) -> Path:
        return self.root / "maillog"

    def _write_config(self) -> None:
        pw = _ids()
        base = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue),
            "data_directory": str(self.root / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": f"{self.name}.test",
            "mydomain": f"{self.name}.test",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "maillog_file": "/dev/stdout",
            "local_header_rewrite_clients": "",
            "alias_maps": "",
            "alias_database": "",
            "smtputf8_enable": "yes",
            "message_size_limit": str(64 * 1024 * 1024),
            "virtual_mailbox_limit": "0",
            "virtual_mailbox_base": str(self.mail),
            "virtual_uid_maps": f"static:{pw[0]}",
            "virtual_gid_maps": f"static:{pw[1]}",
            "smtpd_banner": "$myhostname ESMTP",
            "delay_warning_time": "0",
        }
        base.update(self.settings)
        self.conf.mkdir(exist_ok=True)
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in base.items()))
        smtpd = f"127.0.0.1:{self.port} inet n - n - - smtpd\n"
        (self.conf / "master.cf").write_text(smtpd + SERVICES)

    def _make_dirs(self) -> None:
        uid, gid = _ids()
        postdrop = _group("postdrop")
        for sub in ("data", "mail"):
            (self.root / sub).mkdir()
            os.chown(self.root / sub, uid, gid)
        (self.queue / "pid").mkdir(parents=True)
        for sub in (*QUEUE_DIRS, "public", "private", "bounce", "defer", "trace", "corrupt"):
            path = self.queue / sub
            path.mkdir()
            os.chown(path, uid, postdrop if sub in ("public", "maildrop") else gid)
            path.chmod({"public": 0o710, "maildrop": 0o730}.get(sub, 0o700))
        for sub in ("flush", "saved"):
            (self.queue / sub).mkdir()
            os.chown(self.queue / sub, uid, gid)

    def start(self, timeout: float = 15.0) -> None:
        """Start master in the foreground; retry on a fresh port if ours was taken."""
        self._make_dirs()
        for _ in range(3):
            self._write_config()
            if self._launch(timeout):
                return
            self.port = free_port()  # someone took the port between probe and bind
        raise RuntimeError(f"postfix {self.name} exited three times: {self.log()}")

    def _launch(self, timeout: float) -> bool:
        with self.logfile.open("wb") as log:
            self._proc = subprocess.Popen(
                [str(MASTER), "-c", str(self.conf), "-d"], stdout=log, stderr=subprocess.STDOUT
            )
        proc = self._proc
        # A master that exited failed to bind (logged to syslog, not to our log): retry.
        state = eventually(
            lambda: "exited" if proc.poll() is not None else "greets" if self._greets() else None,
            timeout,
            lambda: f"postfix {self.name} to listen: {self.log()}",
        )
        return state == "greets"

    def _greets(self) -> bool:
        """True if *this* Postfix answers on our port (not some other listener)."""
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), 1) as s,
        ):
            s.settimeout(2)
            banner = s.recv(200)
            s.sendall(b"QUIT\r\n")
            return banner.startswith(f"220 {self.name}.test ".encode())
        return False

    def stop(self) -> None:
        stop_server(self._proc, self.root)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def delivered(self, mailbox: str) -> list[bytes]:
        """Every message the ``virtual`` agent delivered to ``mail/<mailbox>/new``."""
        new = self.mail / mailbox / "new"
        return [p.read_bytes() for p in sorted(new.iterdir())] if new.exists() else []

    def find(self, marker: bytes, mailbox: str) -> list[bytes]:
        return [m for m in self.delivered(mailbox) if marker in m]

    def wait_for(self, marker: bytes, mailbox: str, timeout: float = 15.0) -> bytes:
        """Block until a delivered message contains ``marker``; return it."""
        found = eventually(
            lambda: self.find(marker, mailbox),
            timeout,
            lambda: f"{marker!r} to reach {mailbox}: {self.log()[-3000:]}",
        )
        return found[0]

    def queued(self) -> list[Path]:
        """Messages sitting in the queue (not yet delivered, deferred or held)."""
        out: list[Path] = []
        for sub in ("incoming", "active", "deferred", "hold"):
            out += [p for p in (self.queue / sub).rglob("*") if p.is_file()]
        return out

    def log_offset(self) -> int:
        """Where the log ends now: pass it to ``finished_since`` after the interaction."""
        return len(self.log())

    def finished_since(self, offset: int) -> bool:
        """True once Postfix is done with every transaction begun after log ``offset``
        (at least one): each was delivered (``QUEUEID: removed``) or never committed
        (cleanup discarded its queue file). The positive event a test waits for before
        asserting that a copy did *not* arrive: no copy is in flight any more."""
        log = self.log()[offset:]
        begun = _BEGUN.findall(log)
        in_queue = {path.name for path in self.queued()}
        return bool(begun) and all(f"{qid}: removed" in log or qid not in in_queue for qid in begun)

    def holds(self, marker: bytes) -> bool:
        """True if the upstream has this message anywhere: delivered or queued."""
        for path in self.queued():
            with contextlib.suppress(OSError):
                if marker in path.read_bytes():
                    return True
        return any(marker in p.read_bytes() for p in self.mail.rglob("*") if p.is_file())


def _ids() -> tuple[int, int]:
    import pwd  # noqa: PLC0415

    entry = pwd.getpwnam("postfix")
    return entry.pw_uid, entry.pw_gid


def _group(name: str) -> int:
    import grp  # noqa: PLC0415

    return grp.getgrnam(name).gr_gid
