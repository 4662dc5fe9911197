#!/usr/bin/env python3
"""Fault soak for debcache (issue 8, item 8); run it through benches/soak.sh.

One invocation makes two runs, each on a fresh daemon and an empty cache: a
fault-free run (--fault-free-duration, 0 skips it), then the fault run
(--duration). In each, apt-like clients (--clients) loop against the daemon,
which reaches a mock origin (Remap-soak: /soak ; http://127.0.0.1:PORT/debian)
that injects faults into a fraction (--fault-rate) of its answers: cuts,
stalls held for minutes, 5xx, wrong Content-Length (more or fewer bytes than
sent), TCP resets, trickled bodies, 200 to a Range request, garbage in a
chunked body (--fault-weights). A share of faults stick to their path for
20-120 s (--sticky), as a broken copy on a mirror does; a share of bodies is
sent chunked (--chunked), so cuts and stalls meet both framings. A few extra
connections time cache hits on files warmed before the clients start.
Python 3 standard library only.

The origin's repository is generated from --seed: suites with InRelease,
Release, main/binary-amd64/Packages(.gz) that change every --index-period
seconds (new content, ETag, Last-Modified; new .debs appear with each
version), and a pool of .debs of 1 KB to 8 MB, mostly small, whose bytes are
a slice of one pseudo-random buffer chosen by the path. It honours Range,
If-Range, If-None-Match and If-Modified-Since, and logs every request.

Every client response is checked: a complete 200/206 (its framing satisfied)
must carry the origin's bytes for the URL (an index: any version the origin
has published); a HEAD, the file's length. Cut bodies, error statuses and
connections closed before an answer are tolerated and counted by kind. For
every request the longest time without a byte is recorded (from when the
answer can start: the request sent, or the previous pipelined answer ended;
between reads; last byte to the end or the close).

Checks (any failure: exit status 1), with A = DlMaxRetries + 1 attempts per
backend and W from wait_bound() below:
  - complete bodies that differ from the origin: 0 (a body equal to what the
    origin itself announced as complete with a short Content-Length is the
    origin's lie, counted apart);
  - HEAD answers with a wrong length, malformed answers, statuses the origin
    never sent (4xx, 3xx): 0;
  - origin requests for one path between two client requests for it: <= A
    (a pipelined request counts once when sent, which is when the daemon reads
    it ahead, and again when its answer can start, if that is later);
  - origin requests for a path / client requests for it that were misses (an
    origin request for the path arrived while it was open or before the next
    client request; one read ahead counts twice, as above): <= A for every path;
  - origin requests arriving more than W after the last client request for the
    path (its answer's start), a quiet period after the clients stop included: 0;
  - requests whose longest gap exceeded W: 0;
  - the daemon alive at the end; in the fault-free run, every request served;
  - hit latency p99 of the fault run <= 2 x that of the fault-free run.
"""

import argparse
import asyncio
import bisect
import collections
import math
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array

from soak_clients import clients_main, warm
from soak_origin import FAULT_WEIGHTS, Repo, origin_main

MP = multiprocessing.get_context("fork")


# --------------------------------------------------------------------------
# The bounds the daemon promises (issue 8, item 1). One place, so a change of
# the rule is a change here.

def attempts_per_backend(dl_max_retries):
    """A: requests for one file to one backend in one download."""
    return dl_max_retries + 1


def wait_bound(network_timeout, dl_max_retries):
    """W: the longest a client may wait without a byte on a failing download
    with one backend: A attempts of at most 2T each, plus the A-1 back-offs
    between them (1 s x 2^(k-1) before the k-th retry, capped at 16 s)."""
    attempts = attempts_per_backend(dl_max_retries)
    backoffs = sum(min(16, 2 ** (k - 1)) for k in range(1, attempts))
    return attempts * 2 * network_timeout + backoffs


# --------------------------------------------------------------------------
# The daemon.

def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Daemon:
    def __init__(self, opts, work, origin_port):
        self.dir = work
        conf = os.path.join(work, "conf")
        os.makedirs(conf)
        with open(os.path.join(conf, "acng.conf"), "w") as f:
            f.write("CacheDir: %s\nLogDir: %s\nRemap-soak: /soak ; http://127.0.0.1:%d/debian\n"
                    "NetworkTimeout: %d\nDlMaxRetries: %d\n"
                    % (os.path.join(work, "cache"), os.path.join(work, "log"), origin_port,
                       opts.network_timeout, opts.dl_max_retries))
        self.stderr_path = os.path.join(work, "stderr")
        env = dict(os.environ, NO_COLOR="1")
        env.setdefault("RUST_LOG", "warn")
        argv = [opts.debcache, "-c", conf, "BindAddress=127.0.0.1:0"]
        if opts.server_cpu is not None:
            argv = ["taskset", "-c", str(opts.server_cpu)] + argv
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, env=env)
        deadline = time.monotonic() + 30
        while True:
            with open(self.stderr_path, "rb") as f:
                for line in f.read().decode("utf-8", "replace").splitlines():
                    if line.startswith("debcache: listening on "):
                        host, _, port = line.rsplit(" ", 1)[1].rpartition(":")
                        self.addr = (host, int(port))
                        return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("debcache did not start; its stderr:\n" + self.log_text())
            time.sleep(0.05)

    def pid(self):
        return self.proc.pid  # taskset execs the daemon: same pid

    def log_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# --------------------------------------------------------------------------
# One run.

def run(name, repo, opts, duration, fault_rate, work):
    os.makedirs(work)
    repo.t0 = time.monotonic()
    A = attempts_per_backend(opts.dl_max_retries)
    W = wait_bound(opts.network_timeout, opts.dl_max_retries)
    procs = []
    ctl, child_ctl = MP.Pipe()
    origin = MP.Process(target=origin_main, args=(repo, opts, fault_rate, child_ctl), daemon=True)
    origin.start()
    procs.append(origin)
    daemon = None
    try:
        port = ctl.recv()
        daemon = Daemon(opts, os.path.join(work, "daemon"), port)
        rss = {"start": rss_kb(daemon.pid()), "peak": 0, "samples": []}
        warmed = asyncio.run(warm(daemon.addr, repo, opts))
        bad = [r for r in warmed if r.outcome != "ok"]
        if bad:
            raise SystemExit("%s: warming failed: %s" % (name, ", ".join(
                "%s %s" % (r.rel, r.outcome) for r in bad[:5])))
        rss["warm"] = rss_kb(daemon.pid())
        started = time.monotonic()
        stop_at = started + duration
        progress = MP.Array("q", 2, lock=False)
        outs = {}
        for role in ("apt", "hits"):
            outs[role] = os.path.join(work, role + ".pickle")
            p = MP.Process(target=clients_main, daemon=True,
                           args=(role, repo, opts, daemon.addr, stop_at, outs[role], progress))
            p.start()
            procs.append(p)
        hard_stop = stop_at + opts.client_limit * 3 + 60
        last_note = started

        def sample():
            kb = rss_kb(daemon.pid())
            if kb:
                rss["peak"] = max(rss["peak"], kb)
                rss["samples"].append(kb)

        while any(p.is_alive() for p in procs[1:]) and time.monotonic() < hard_stop:
            sample()
            time.sleep(1)
            if time.monotonic() - last_note >= 30:
                last_note = time.monotonic()
                print("  [%s] %3.0f s: %d requests, %d not ok; daemon RSS %.1f MB"
                      % (name, last_note - started, progress[0], progress[1], (rss_kb(daemon.pid()) or 0) / 1024),
                      file=sys.stderr, flush=True)
        clients_done = time.monotonic()
        stragglers = [p for p in procs[1:] if p.is_alive()]
        for p in stragglers:
            p.kill()
        quiet_end = clients_done + opts.quiet
        while time.monotonic() < quiet_end:
            sample()
            time.sleep(1)
        alive = daemon.proc.poll() is None
        rss["end"] = rss_kb(daemon.pid())
        dump = os.path.join(work, "origin.pickle")
        ctl.send(dump)
        ctl.recv()
        with open(dump, "rb") as f:
            olog = pickle.load(f)
        exit_code = daemon.stop()
        results = {}
        for role, path in outs.items():
            if os.path.exists(path):
                with open(path, "rb") as f:
                    results[role] = pickle.load(f)
            else:
                results[role] = {"records": [], "latencies": array("d")}
        records = [r.record() for r in warmed] + results["apt"]["records"] + results["hits"]["records"]
        return analyse(name, records, results["hits"]["latencies"], olog, A, W, fault_rate, {
            "t0": repo.t0, "duration": clients_done - started, "quiet": opts.quiet, "rss": rss, "alive": alive,
            "exit": exit_code, "stragglers": len(stragglers), "stderr": summarise_log(daemon.log_text())})
    finally:
        if daemon:
            daemon.stop()
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(5)


def summarise_log(text):
    counts = collections.Counter()
    for line in text.splitlines():
        if line.startswith("debcache: listening on") or not line.strip():
            continue
        msg = line.split(" ", 2)[-1] if line[:4].isdigit() else line
        counts["".join("N" if c.isdigit() else c for c in msg)[:140]] += 1
    return counts.most_common(5)


# --------------------------------------------------------------------------
# Analysis.

def analyse(name, records, latencies, olog, A, W, fault_rate, info):
    out = dict(info, name=name, A=A, W=W, fault_rate=fault_rate)
    out["outcomes"] = collections.Counter((r[0], r[1] if r[1] == "HEAD" else "GET", r[6]) for r in records)
    out["origin_faults"] = collections.Counter(olog["faults"][i] or "none" for i in olog["fault"])
    out["origin_requests"] = len(olog["t"])
    short = olog["short"]
    differs, excused, head_bad = [], 0, []
    for r in records:
        if r[6] == "differs":
            length, prefix = r[8][:2]
            if prefix and (r[2], length) in short:
                excused += 1
            else:
                differs.append(r)
        elif r[6] == "head-length":
            if (r[2], r[8]) in short:
                excused += 1
            else:
                head_bad.append(r)
    out["differs"], out["excused"], out["head_bad"] = differs, excused, head_bad
    poisoned = {rel for rel, _ in short}
    out["unexpected"] = [r for r in records if r[6].startswith("status-") and int(r[6][7:]) < 500
                         and not (r[6] == "status-416" and r[2] in poisoned)]
    out["malformed"] = [r for r in records if r[6] == "malformed"]
    out["gaps"] = sorted((r for r in records if r[7] > W), key=lambda r: -r[7])
    out["max_gap"] = max((r[7] for r in records), default=0.0)
    bad = [r for r in records if not r[6].startswith(("ok", "stale"))]
    out["not_served"], out["records_bad"] = len(bad), bad[:3]

    clients = collections.defaultdict(list)
    for r in records:
        clients[(r[1], r[2])].append(r)
    arrivals = collections.defaultdict(list)
    for t, k in zip(olog["t"], olog["key"]):
        arrivals[olog["keys"][k]].append(t)
    worst_window, ratios, late, storms = (0, None), [], [], []
    total_misses = 0
    for key, times in arrivals.items():
        times.sort()
        reqs = sorted(clients.get(key, []), key=lambda r: r[3])
        # Client events: a request is seen when sent (read ahead), and again
        # when its answer can start if a previous answer held it up.
        events = sorted({r[3] for r in reqs} | {r[4] for r in reqs if r[4] - r[3] > 1.0})
        counts = collections.Counter(bisect.bisect_right(events, t) - 1 for t in times)
        window, most = max(counts.items(), key=lambda kv: kv[1])
        if most > worst_window[0]:
            worst_window = (most, key, events[window] if window >= 0 else None)
        # A miss: a client event followed by an origin request for the path
        # while the request was open or before the next event.
        misses = 0
        for r in reqs:
            for te in (r[3], r[4]) if r[4] - r[3] > 1.0 else (r[3],):
                j = bisect.bisect_right(events, te)
                until = max(r[5], events[j] if j < len(events) else math.inf)
                i = bisect.bisect_left(times, te)
                if i < len(times) and times[i] <= until:
                    misses += 1
        total_misses += misses
        ratios.append((len(times) / misses if misses else math.inf, key, len(times), misses))
        sent = [r[3] for r in reqs]
        maxref, acc = [], -math.inf
        for r in reqs:
            acc = max(acc, r[4])
            maxref.append(acc)
        for t in times:
            j = bisect.bisect_right(sent, t) - 1
            delay = t - maxref[j] if j >= 0 else math.inf
            if delay > W:
                late.append((delay, key, t))
        storms.append((len(times), key))
    out["worst_window"] = worst_window
    ratios.sort(key=lambda x: -x[0])
    out["worst_ratio"] = ratios[0] if ratios else (0.0, None, 0, 0)
    out["ratio_total"] = out["origin_requests"] / total_misses if total_misses else 0.0
    out["client_misses"] = total_misses
    late.sort(key=lambda x: -x[0])
    out["late"] = late
    busiest = sorted(storms, key=lambda x: -x[0])[:3]
    ids = {olog["keys"].index(key): key for _, key in busiest}
    kinds = collections.defaultdict(collections.Counter)
    for k, f, st in zip(olog["key"], olog["fault"], olog["status"]):
        if k in ids:
            kinds[ids[k]]["%s %d" % (olog["faults"][f] or "none", st)] += 1
    out["busiest"] = [(n, key, kinds[key].most_common(3)) for n, key in busiest]
    lat = sorted(latencies)
    out["hits"] = len(lat)
    out["p50"] = lat[len(lat) // 2] * 1000 if lat else None
    out["p99"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None
    return out


# --------------------------------------------------------------------------
# The report.

def report(runs, opts):
    A, W = runs[-1]["A"], runs[-1]["W"]
    print("debcache fault soak: %s" % opts.debcache)
    print("%d apt-like clients, %d hit connections; NetworkTimeout %d, DlMaxRetries %d: A = %d attempts, W = %d s;"
          " seed %d; load average %s" % (opts.clients, opts.hit_conns, opts.network_timeout, opts.dl_max_retries,
                                         A, W, opts.seed, " ".join("%.1f" % x for x in os.getloadavg())))
    names = [r["name"] for r in runs]
    row = lambda label, vals: print("%-46s" % label + "".join("%16s" % v for v in vals))
    print()
    row("", names)
    row("fault rate", ["%.0f %%" % (r["fault_rate"] * 100) for r in runs])
    row("clients ran, s (+ quiet period)", ["%.0f (+%d)" % (r["duration"], r["quiet"]) for r in runs])
    row("client requests", [sum(r["outcomes"].values()) for r in runs])
    keys = sorted({k for r in runs for k in r["outcomes"]}, key=lambda k: (k[0], k[1], k[2]))
    for k in keys:
        row("  %s %s %s" % k, [r["outcomes"].get(k, 0) for r in runs])
    row("origin requests", [r["origin_requests"] for r in runs])
    row("  answered with a fault", ["%.1f %%" % (100 - 100 * sum(
        n for f, n in r["origin_faults"].items() if f.startswith("none")) / max(1, r["origin_requests"]))
        for r in runs])
    for f in sorted({f for r in runs for f in r["origin_faults"]}):
        row("  " + f, [r["origin_faults"].get(f, 0) for r in runs])
    row("client misses (see the script's header)", [r["client_misses"] for r in runs])
    row("origin requests per client miss, overall", ["%.2f" % r["ratio_total"] for r in runs])
    row("longest wait without a byte, s", ["%.1f" % r["max_gap"] for r in runs])
    row("hit latency p50 / p99, ms", ["%s / %s" % (fmt_ms(r["p50"]), fmt_ms(r["p99"])) for r in runs])
    row("hit requests timed", [r["hits"] for r in runs])
    row("daemon RSS start / warm, MB", ["%s / %s" % (mb(r["rss"]["start"]), mb(r["rss"]["warm"])) for r in runs])
    row("daemon RSS peak / end, MB", ["%s / %s" % (mb(r["rss"]["peak"]), mb(r["rss"]["end"])) for r in runs])
    row("daemon exit status after SIGTERM", [r["exit"] for r in runs])
    print()
    failed = []

    def check(ok, text, detail=None, always=False):
        """detail: a function giving examples, called on failure (always:
        whatever the outcome)."""
        shown = detail and (always or not ok)
        print("  [%s] %s%s" % ("ok" if ok else "FAIL", text, (": " + detail()) if shown else ""))
        if not ok:
            failed.append(text)

    for r in runs:
        print("checks, %s run:" % r["name"])
        check(not r["differs"], "complete bodies that differ from the origin: %d" % len(r["differs"]),
              lambda: examples(r["differs"]))
        if r["excused"]:
            print("       (%d complete bodies equal what the origin announced with a short Content-Length)"
                  % r["excused"])
        check(not r["head_bad"], "HEAD answers with a wrong length: %d" % len(r["head_bad"]),
              lambda: examples(r["head_bad"]))
        check(not r["malformed"], "malformed answers: %d" % len(r["malformed"]), lambda: examples(r["malformed"]))
        check(not r["unexpected"], "statuses the origin never sent (4xx, 3xx): %d" % len(r["unexpected"]),
              lambda: examples(r["unexpected"]))
        most, key, at = r["worst_window"]
        check(most <= A, "most origin requests for one path between two client requests: %d (<= %d)" % (most, A),
              lambda: "%s %s, after the client request at %s" % (
                  key[0], key[1], "%.1f s" % (at - r["t0"]) if at is not None else "(none before)"), always=most > 1)
        ratio, key2, o, m = r["worst_ratio"]
        check(ratio <= A, "most origin requests per client miss for one path: %s (<= %d)" % (
            "inf" if ratio == math.inf else "%.2f" % ratio, A),
            lambda: "%s %s: %d origin requests, %d misses" % (key2[0], key2[1], o, m), always=ratio > 1)
        check(not r["late"], "origin requests more than W = %d s after the last client request: %d" % (
            W, len(r["late"])), lambda: "; ".join("%s %s %s" % (
                k[0], k[1], "%.0f s after" % d if d != math.inf else "with none before") for d, k, _ in r["late"][:3]))
        check(not r["gaps"], "requests that waited more than W = %d s without a byte: %d" % (W, len(r["gaps"])),
              lambda: "; ".join("%s %s %.1f s (%s)" % (g[1], g[2], g[7], g[6]) for g in r["gaps"][:3]))
        check(r["alive"], "daemon alive at the end")
        if r["fault_rate"] == 0:
            check(r["not_served"] == 0, "requests not served in the fault-free run: %d" % r["not_served"],
                  lambda: examples([x for x in r["records_bad"]]))
        if r["stragglers"]:
            check(False, "client processes that did not finish: %d" % r["stragglers"])
        for n, key, kinds in r["busiest"]:
            print("       busiest: %d origin requests for %s %s (%s)" % (
                n, key[0], key[1], ", ".join("%d %s" % (c, f) for f, c in kinds)))
        for msg, count in r["stderr"]:
            print("       daemon logged %d x %s" % (count, msg))
    free = next((r for r in runs if r["fault_rate"] == 0), None)
    fault = next((r for r in runs if r["fault_rate"] > 0), None)
    if free and fault and free["p99"] and fault["p99"]:
        ratio = fault["p99"] / free["p99"]
        print("hit latency, faults vs fault-free: p50 x%.2f, p99 x%.2f" % (fault["p50"] / free["p50"], ratio))
        check(ratio <= 2.0, "hit p99 with faults within 2 x the fault-free p99")
    print()
    print("FAILED: %d check(s)" % len(failed) if failed else "all checks passed")
    return 1 if failed else 0


def examples(recs):
    return "; ".join("%s %s %s %s" % (r[1], r[2], r[6], r[8] if r[8] is not None else "") for r in recs[:3])


def fmt_ms(v):
    return "-" if v is None else "%.2f" % v


def mb(kb):
    return "-" if not kb else "%.1f" % (kb / 1024)


# --------------------------------------------------------------------------

def fault_weights(text):
    weights = dict.fromkeys(FAULT_WEIGHTS, 0.0)
    for item in filter(None, text.split(",")):
        kind, _, n = item.partition("=")
        if kind not in weights or not n.replace(".", "", 1).isdigit():
            raise argparse.ArgumentTypeError("%r: want KIND=N with KIND one of %s" % (item, ", ".join(weights)))
        weights[kind] = float(n)
    return weights


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debcache", required=True, help="the daemon binary")
    p.add_argument("--duration", type=float, default=600, help="seconds of the fault run (600)")
    p.add_argument("--fault-free-duration", type=float, default=120,
                   help="seconds of the fault-free run before it, 0 to skip (120)")
    p.add_argument("--clients", type=int, default=50, help="apt-like clients (50)")
    p.add_argument("--fault-rate", type=float, default=0.2, help="fraction of origin answers faulted (0.2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 60 s with faults, 30 s without, a smaller repository")
    p.add_argument("--network-timeout", type=int, default=5, help="the daemon's NetworkTimeout (5)")
    p.add_argument("--dl-max-retries", type=int, default=2, help="the daemon's DlMaxRetries (2)")
    p.add_argument("--files", type=int, default=2000, help=".debs in the base pool (2000)")
    p.add_argument("--new-per-epoch", type=int, default=40, help="new .debs per suite and index version (40)")
    p.add_argument("--index-period", type=float, default=60, help="seconds between index versions (60)")
    p.add_argument("--zipf", type=float, default=0.9, help="exponent of the base pool's popularity (0.9)")
    p.add_argument("--hit-conns", type=int, default=4, help="hit-latency connections (4)")
    p.add_argument("--hit-interval", type=float, default=0.05, help="pause between timed hits (0.05 s)")
    p.add_argument("--fault-weights", type=fault_weights, default=dict(FAULT_WEIGHTS),
                   help="relative weights of the faults, KIND=N,...; kinds not listed are not injected (%s)" % (
                       ",".join("%s=%d" % kv for kv in FAULT_WEIGHTS.items())))
    p.add_argument("--chunked", type=float, default=0.2,
                   help="share of the origin's bodies sent chunked, faulted or not (0.2)")
    p.add_argument("--sticky", type=float, default=0.1,
                   help="share of faults that repeat for every request of the path for 20-120 s (0.1)")
    p.add_argument("--stall-max", type=float, default=180, help="longest an origin stall holds a connection (180 s)")
    p.add_argument("--quiet", type=int, help="seconds watched after the clients stop (W + 10)")
    p.add_argument("--server-cpu", type=int, help="pin the daemon to this CPU (taskset)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    opts = p.parse_args()
    if opts.quick:
        opts.duration, opts.fault_free_duration, opts.files = 60, min(opts.fault_free_duration, 30), 600
    W = wait_bound(opts.network_timeout, opts.dl_max_retries)
    opts.quiet = W + 10 if opts.quiet is None else opts.quiet
    opts.client_limit = 2 * W + 10
    longest = max(opts.duration, opts.fault_free_duration) + opts.client_limit * 3 + opts.quiet + 60
    t = time.monotonic()
    repo = Repo(opts.seed, opts.files, opts.new_per_epoch, opts.index_period,
                int(longest / opts.index_period) + 2, 20)
    print("repository: %d files, %.0f MB, made in %.1f s" % (
        len(repo.files), sum(f[1] for f in repo.files.values()) / 1048576, time.monotonic() - t), file=sys.stderr)
    work = tempfile.mkdtemp(prefix="debcache-soak.")
    runs = []
    try:
        plan = ([("fault-free", opts.fault_free_duration, 0.0)] if opts.fault_free_duration > 0 else []) + [
            ("faults", opts.duration, opts.fault_rate)]
        for name, duration, rate in plan:
            print("%s run: %.0f s, then %d s quiet" % (name, duration, opts.quiet), file=sys.stderr, flush=True)
            runs.append(run(name, repo, opts, duration, rate, os.path.join(work, name)))
    finally:
        if opts.keep:
            print("work directory kept: " + work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(report(runs, opts))


if __name__ == "__main__":
    main()
