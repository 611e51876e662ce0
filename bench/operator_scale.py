"""Operator scale: N TLSPolicies in one namespace against a real kube-apiserver (issue 18).

Measures, in one bounded run: cold-start convergence (policies exist, then the operator
starts; until every status observes its generation, seen on one watch so that measuring
does not load the box), the same run's *floor* for it (the same N status writes, alone,
through the operator's own API client: what no operator can beat), edit → ConfigMap latency, the
operator's peak RSS, API writes while idle (status/ConfigMap resourceVersions over a
window with report reads every few seconds), and a burst of new policies (time until all
are rendered, ConfigMap writes it cost). Request counts come from the API server's own
``apiserver_request_total`` (the bench's own requests subtracted), so they do not depend on
how loaded the box is. Targets: 1,000 policies converge ≤ 30 s, edit ≤ 3 s, RSS ≤ 250 MiB,
idle writes ≈ 0. Run: ``python -m bench.operator_scale [N] [--load K]`` (K processes
spinning on the cores meanwhile, bounded by the run: a noisy neighbour); to compare with another
checkout in the same run, run it again with ``PYTHONPATH=<checkout>/operator:<checkout>/gateway``.
It must not run in the test suite (numbers, not assertions).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from lightkube import ApiError, Client, KubeConfig  # noqa: E402
from lightkube.resources.core_v1 import ConfigMap, Event  # noqa: E402

from kubeplane.controlplane import ControlPlane  # noqa: E402
from kubeplane.runner import Runner  # noqa: E402
from kubeplane.tools import Tools  # noqa: E402
from mtapeers.procs import terminate  # noqa: E402
from mxgate_operator.kube import Kube, TLSPolicy  # noqa: E402
from mxgate_operator.reconcile import WRITE_CONCURRENCY  # noqa: E402

CRD = REPO / "helm/mxgate/files/crds/tlspolicies.mxgate.io.yaml"
LIMIT_S = 300.0  # every wait is bounded
EDITS = 5  # edits once idle, one at a time
BURST = 200  # new policies created in one `kubectl apply` after the idle window
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def policy(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "mxgate.io/v1alpha1",
        "kind": "TLSPolicy",
        "metadata": {"name": f"p{i:04}"},
        "spec": {
            "mode": "audit" if i % 2 else "opportunistic",
            "priority": i % 100,
            "scope": {
                "senderDomains": [f"s{i}.example"],
                "recipientDomains": [f"r{i}.example", f"*.r{i}.example"],
            },
        },
    }


class Watch:
    """What ``keep`` extracts from each object of a kind in a namespace, from one watch.

    A thread follows the watch (re-watching from the last resourceVersion every few seconds,
    so it notices ``stop``); ``wait`` wakes as soon as the awaited change lands, with no
    polling (a LIST of 1,000 policies, or a GET of their 300 KB ConfigMap, every fraction of
    a second costs the box about as much CPU as the operator does).
    """

    def __init__(
        self, kubeconfig: Path, kind: Any, namespace: str, keep: Callable[[Any], Any]
    ) -> None:
        self._client = Client(KubeConfig.from_file(str(kubeconfig)))
        self._kind, self._namespace, self._keep = kind, namespace, keep
        self.seen: dict[str, Any] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._follow, name="bench-watch", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        version: str | None = None
        try:
            while not self._stop.is_set():
                watch = self._client.watch(
                    self._kind,
                    namespace=self._namespace,
                    resource_version=version,
                    server_timeout=3,
                )
                try:
                    for kind, obj in watch:
                        meta = obj.metadata
                        if meta is None or meta.name is None:
                            continue
                        version = meta.resourceVersion
                        kept = None if kind == "DELETED" else self._keep(obj)
                        with self._changed:
                            if kept is None:
                                self.seen.pop(meta.name, None)
                            else:
                                self.seen[meta.name] = kept
                            self._changed.notify_all()
                except ApiError as exc:
                    # 410 Gone, or 504 "Too large resource version" (the server's watch
                    # cache lags behind under load): start over from a fresh listing.
                    if exc.status.code not in (410, 504):
                        raise
                    version = None
        except Exception as exc:
            self.error = exc
            with self._changed:
                self._changed.notify_all()

    def wait(
        self, what: str, check: Callable[[dict[str, Any]], bool], limit: float = LIMIT_S
    ) -> float:
        """Seconds until ``check(seen)`` holds; SystemExit after ``limit``."""
        begin = time.monotonic()
        with self._changed:
            while not check(self.seen):
                left = limit - (time.monotonic() - begin)
                if self.error is not None:
                    raise SystemExit(f"{self._kind.__name__} watch failed: {self.error!r}")
                if left <= 0:
                    raise SystemExit(f"timed out after {limit:.0f} s waiting for {what}")
                self._changed.wait(min(left, 1.0))
        return time.monotonic() - begin

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def generations(obj: Any) -> tuple[int, int | None]:
    """A policy's (metadata.generation, status.observedGeneration)."""
    return int(obj.metadata.generation or 0), (obj.get("status") or {}).get("observedGeneration")


def rendered_rules(obj: Any) -> dict[str, int]:
    """The policy ConfigMap's rules: id -> priority."""
    data = (obj.data or {}).get("policy.json")
    return {r["id"]: r["priority"] for r in json.loads(data)["rules"]} if data else {}


def every_status(n: int) -> Any:
    def done(seen: dict[str, Any]) -> bool:
        return len(seen) == n and all(gen == observed for gen, observed in seen.values())

    return done


def create_policies(kubectl: Runner, namespace: str, indices: range) -> None:
    kubectl("create", "namespace", namespace)
    for start in range(indices.start, indices.stop, 250):
        items = [policy(i) for i in range(start, min(indices.stop, start + 250))]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        kubectl("apply", "-n", namespace, "-f", "-", stdin=body)


async def write_statuses(
    kubeconfig: Path, namespace: str, names: list[str], status: dict[str, Any]
) -> None:
    """The floor: ``status`` applied to every policy through the operator's own client and
    call (``Kube.apply_policy_status``), as many in flight as the operator allows."""
    gate = asyncio.Semaphore(WRITE_CONCURRENCY)
    async with Kube.connect(str(kubeconfig)) as kube:

        async def one(name: str) -> None:
            async with gate:
                await kube.apply_policy_status(namespace, name, status)

        await asyncio.gather(*(one(name) for name in names))


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def request_counts(kubectl: Runner) -> dict[tuple[str, str], float]:
    """(verb, resource[/subresource]) -> requests served so far, from the API server's metrics."""
    out: dict[tuple[str, str], float] = {}
    for line in kubectl("get", "--raw", "/metrics").stdout.splitlines():
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = dict(_LABEL.findall(m.group(1)))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        key = (labels.get("verb", ""), resource)
        out[key] = out.get(key, 0.0) + float(m.group(2))
    return out


def delta(
    after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]
) -> dict[tuple[str, str], int]:
    return {k: int(v - before.get(k, 0.0)) for k, v in after.items() if v != before.get(k, 0.0)}


WRITES = ("POST", "PUT", "PATCH", "APPLY", "DELETE")


def describe(counts: dict[tuple[str, str], int], own_lists: int = 0) -> str:
    """The operator's requests in a phase: writes by resource, and LISTs of policies."""
    writes = sorted((k, v) for k, v in counts.items() if k[0] in WRITES)
    lists = counts.get(("LIST", "tlspolicies"), 0) - own_lists
    parts = [f"{verb} {res} {n}" for (verb, res), n in writes]
    return f"LIST tlspolicies {lists}; writes: " + (", ".join(parts) or "none")


def cpu_seconds(*pids: int) -> float:
    """User + system CPU of the processes so far (their threads included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def control_plane_tools() -> Tools:
    """kube-apiserver from the project's build script (cached), etcd and kubectl from PATH."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts/build-control-plane.sh"), "kube-apiserver"],
        capture_output=True,
        text=True,
        check=True,
    )
    apiserver = Path(done.stdout.split()[-1])
    etcd, kubectl = shutil.which("etcd"), shutil.which("kubectl")
    if etcd is None or kubectl is None:
        raise SystemExit("needs etcd and kubectl on PATH (make system-deps)")
    unused = Path("/nonexistent")  # helm and cert-manager are not needed here
    return Tools(unused, apiserver, Path(etcd), Path(kubectl), unused, unused)


def spinners(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that each keep one core busy (a noisy neighbour), for at most
    LIMIT_S seconds even if nobody stops them."""
    spin = f"import time\nend = time.monotonic() + {LIMIT_S}\nwhile time.monotonic() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]


def main(n: int = 1000, load: int = 0) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below
    noise = spinners(load)
    tools = control_plane_tools()
    work = Path(tempfile.mkdtemp(prefix="mxgate-opscale-"))
    plane = ControlPlane(tools=tools, workdir=work)
    plane.start()
    kubectl = Runner(tools.kubectl, plane.kubeconfig)
    proc: subprocess.Popen[bytes] | None = None
    try:
        kubectl("apply", "--server-side", "-f", str(CRD))
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/tlspolicies.mxgate.io")
        ns = f"scale-{uuid.uuid4().hex[:6]}"
        create_policies(kubectl, ns, range(n))
        watch = Watch(plane.kubeconfig, TLSPolicy, ns, generations)
        events = Watch(plane.kubeconfig, Event, ns, lambda e: e.reason)
        watch.wait("the watch to list every policy", lambda seen: len(seen) == n)

        own_lists = [0]  # the bench's own LISTs of tlspolicies (subtracted from the counts)

        def statuses() -> list[dict[str, Any]]:
            own_lists[0] += 1
            return kubectl.json("get", "tlspolicies", "-n", ns)["items"]  # type: ignore[no-any-return]

        env = {
            **os.environ,
            "KUBECONFIG": str(plane.kubeconfig),  # kopf's own login
            "MXGATE_KUBECONFIG": str(plane.kubeconfig),
            "MXGATE_NAMESPACE": ns,
            "MXGATE_REPORT_URLS": "http://127.0.0.1:9/report",  # refused at once: a failing read
            "MXGATE_REPORT_INTERVAL": "5",  # harsher than the chart's 60 s
            # the chart's defaults for the allowlists (helm/mxgate/templates/operator-deployment)
            "MXGATE_ALLOWED_ISSUERS": "Issuer/*",
            "MXGATE_ALLOWED_DNS_NAMES": "mx1.example.com",
            "MXGATE_MIN_CERTIFICATE_DURATION": "24h",
            "MXGATE_GATEWAY_DOMAINS": "example.com",
        }
        log = (work / "operator.log").open("wb")
        operator = Path(sys.executable).parent / "mxgate-operator"
        counts0 = request_counts(kubectl)
        server = [p.pid for p in plane._procs]  # etcd and kube-apiserver
        server0 = cpu_seconds(*server)
        begin = time.monotonic()
        proc = subprocess.Popen(
            [str(operator), "--standalone", f"--namespace={ns}"], env=env, stdout=log, stderr=log
        )
        watch.wait("convergence", every_status(n))
        cold = time.monotonic() - begin
        cold_requests = delta(request_counts(kubectl), counts0)
        cold_cpu, cold_server = cpu_seconds(proc.pid), cpu_seconds(*server) - server0
        cold_lists = own_lists[0]
        watch.stop()
        events.wait(
            "every first Ready event", lambda seen: sum(r == "Ready" for r in seen.values()) >= n
        )
        cold_events = time.monotonic() - begin
        events.stop()

        # The floor, same run: the status the operator wrote, applied to N fresh policies
        # in a namespace the operator does not watch (it is idle meanwhile; its events are
        # not part of the floor, they come after every status in a cold start too).
        written = kubectl.json("get", "tlspolicy", "p0000", "-n", ns)["status"]
        floor_ns = f"floor-{uuid.uuid4().hex[:6]}"
        create_policies(kubectl, floor_ns, range(n))
        floor_server0 = cpu_seconds(*server)
        start_floor = time.monotonic()
        asyncio.run(
            write_statuses(plane.kubeconfig, floor_ns, [f"p{i:04}" for i in range(n)], written)
        )
        floor = time.monotonic() - start_floor
        floor_server = cpu_seconds(*server) - floor_server0

        def configmap() -> dict[str, Any]:
            return kubectl.json("get", "configmap", "mxgate-policy", "-n", ns)  # type: ignore[no-any-return]

        rendered = Watch(plane.kubeconfig, ConfigMap, ns, rendered_rules)

        def has_rule(rule: str, priority: int) -> Callable[[dict[str, Any]], bool]:
            return lambda seen: seen.get("mxgate-policy", {}).get(rule) == priority

        edits = []
        for k in range(EDITS):
            patch = json.dumps({"spec": {"priority": 500 + k}})
            target = f"p{(k * 337) % n:04}"
            start_edit = time.monotonic()
            kubectl("patch", "tlspolicy", target, "-n", ns, "--type=merge", "-p", patch)
            rendered.wait("the edit in the ConfigMap", has_rule(f"{ns}/{target}", 500 + k), 60)
            edits.append(time.monotonic() - start_edit)
        time.sleep(6)  # let the edit's own status write settle and a report tick pass

        def versions() -> dict[str, str]:
            out = {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in statuses()}
            out["<configmap>"] = configmap()["metadata"]["resourceVersion"]
            return out

        before = versions()
        idle_counts = request_counts(kubectl)
        idle = 30.0
        time.sleep(idle)  # six report ticks
        idle_requests = delta(request_counts(kubectl), idle_counts)
        after = versions()
        idle_writes = sum(1 for k, v in after.items() if before.get(k) != v)
        rss, hwm = rss_kib(proc.pid)

        burst_names = {f"{ns}/p{i:04}" for i in range(n, n + BURST)}
        items = [policy(i) for i in range(n, n + BURST)]
        burst_counts = request_counts(kubectl)
        burst_cpu0 = cpu_seconds(proc.pid)
        start_burst = time.monotonic()
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        kubectl("apply", "-n", ns, "-f", "-", stdin=body)
        applied_burst = time.monotonic() - start_burst
        # An edit while the burst's statuses are still being written.
        busy_edit = time.monotonic()
        kubectl(
            "patch",
            "tlspolicy",
            "p0001",
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"spec":{"priority":777}}',
        )
        rendered.wait("the edit during the burst", has_rule(f"{ns}/p0001", 777), 120)
        busy_edit = time.monotonic() - busy_edit
        rendered.wait(
            "the burst in the ConfigMap",
            lambda seen: burst_names <= set(seen.get("mxgate-policy", {})),
            120,
        )
        burst = time.monotonic() - start_burst
        rendered.stop()
        burst_requests = delta(request_counts(kubectl), burst_counts)
        burst_cpu = cpu_seconds(proc.pid) - burst_cpu0
        configmap_writes = sum(
            v for (verb, res), v in burst_requests.items() if res == "configmaps" and verb in WRITES
        )
        _rss, hwm = rss_kib(proc.pid)
        print(
            f"operator scale, {n} TLSPolicies in one namespace"
            f" (kube-apiserver {tools.kube_apiserver.name}),"
            f" {load} busy neighbour process(es), load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"  cold-start convergence      {cold:6.1f} s   (target <= 30 s),"
            f" {cold / floor:.1f}x the floor; every first Ready event posted at {cold_events:.1f} s"
        )
        print(
            f"  floor: {n} status writes    {floor:6.1f} s   alone, same run"
            f" (kube-apiserver + etcd CPU {floor_server:.1f} s)"
        )
        print(
            f"  edit -> ConfigMap           {max(edits):6.2f} s max of {len(edits)},"
            f" median {statistics.median(edits):.2f} s (target <= 3 s)"
        )
        print(
            f"  operator RSS                {rss / 1024:6.0f} MiB now,"
            f" {hwm / 1024:.0f} MiB peak (target <= 250)"
        )
        print(f"  objects rewritten while idle {idle_writes:5d} in {idle:.0f} s (target ~0)")
        print(
            f"  burst of {BURST} creates       {burst:6.1f} s until all rendered"
            f" (kubectl took {applied_burst:.1f} s), {configmap_writes} ConfigMap writes"
        )
        print(
            f"  CPU, cold start             operator {cold_cpu:.1f} s,"
            f" kube-apiserver + etcd {cold_server:.1f} s"
        )
        print(f"  CPU, burst                  operator {burst_cpu:.1f} s")
        print(
            f"  edit -> ConfigMap, burst    {busy_edit:6.2f} s"
            " (sent right after the burst, while its statuses are written)"
        )
        print(f"  API requests, cold start:  {describe(cold_requests, cold_lists)}")
        print(f"  API requests, idle {idle:.0f} s:   {describe(idle_requests)}")
        print(f"  API requests, burst:       {describe(burst_requests)}")
        print(f"  logs: {work}")
    finally:
        for spinner in noise:
            spinner.kill()
            spinner.wait()
        if proc is not None:
            terminate(proc)
        plane.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.operator_scale")
    parser.add_argument("n", type=int, nargs="?", default=1000, help="TLSPolicies (1000)")
    parser.add_argument(
        "--load", type=int, default=0, help="processes that keep a core busy meanwhile (0)"
    )
    args = parser.parse_args()
    main(args.n, args.load)
