"""The clients of benches/soak.py: apt-like loops and timed cache hits over
pipelined HTTP/1.1, every answer checked against the origin's bytes."""

import asyncio
import bisect
import hashlib
import pickle
import random
import signal
import time
from array import array

from soak_origin import SOLID_LM, SUITES, parse_range, split_index


# --------------------------------------------------------------------------
# The clients' side of HTTP/1.1: pipelined requests on one connection, each
# answer parsed as it arrives, every wait without a byte timed.

class Req:
    __slots__ = ("group", "method", "rel", "headers", "rng", "sent", "ref", "last", "end",
                 "gap", "outcome", "detail")

    def __init__(self, group, method, rel, headers=(), rng=None):
        self.group, self.method, self.rel, self.headers, self.rng = group, method, rel, list(headers), rng
        self.sent = self.ref = self.last = self.end = 0.0
        self.gap = 0.0
        self.outcome, self.detail = "", None

    def wire(self, host):
        lines = ["%s /soak/%s HTTP/1.1" % (self.method, self.rel), "Host: " + host,
                 "User-Agent: Debian APT-HTTP/1.3 (soak)"] + self.headers
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def record(self):
        return (self.group, self.method, self.rel, self.sent, self.ref, self.end, self.outcome,
                self.gap, self.detail)


class Broken(Exception):
    """The connection ended (EOF or reset) before the answer did."""


class Hung(Exception):
    """No byte for the client's own limit."""


class Malformed(Exception):
    pass


class Conn:
    def __init__(self, addr, limit):
        self.addr, self.limit = addr, limit
        self.reader = self.writer = None
        self.buf = bytearray()
        self.last_end = 0.0
        self.open = False

    async def connect(self):
        self.reader, self.writer = await asyncio.open_connection(self.addr[0], self.addr[1], limit=1 << 20)
        self.buf = bytearray()
        self.last_end = 0.0
        self.open = True

    def close(self):
        if self.writer:
            self.writer.transport.abort()
        self.open = False

    def send(self, reqs):
        # The clock first: the origin may log the daemon's request before
        # this process runs again.
        now = time.monotonic()
        for r in reqs:
            r.sent = now
        self.writer.write(b"".join(r.wire("%s:%d" % self.addr) for r in reqs))

    async def fill(self, req):
        left = self.limit - (time.monotonic() - req.last)
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 18), max(0.0, left))
        except asyncio.TimeoutError:
            self.waited(req)
            raise Hung() from None
        except OSError:
            self.waited(req)
            raise Broken("reset") from None
        self.waited(req)
        if not data:
            raise Broken("eof")
        self.buf += data

    @staticmethod
    def waited(req):
        now = time.monotonic()
        req.gap = max(req.gap, now - req.last)
        req.last = now

    async def answer(self, req):
        """Reads req's answer: (status, headers, body, complete)."""
        req.ref = req.last = max(req.sent, self.last_end)
        got_any = False
        try:
            while True:
                i = self.buf.find(b"\r\n\r\n")
                if i >= 0:
                    break
                if len(self.buf) > 65536:
                    raise Malformed("head too long")
                got_any = got_any or bool(self.buf)
                await self.fill(req)
                got_any = True
            status, headers = parse_head(bytes(self.buf[:i]))
            del self.buf[:i + 4]
            got_any = True
            body, complete = await self.body(req, status, headers)
        except Broken as e:
            self.open = False
            req.end = time.monotonic()
            raise Broken("cut" if got_any else "no-answer") from e
        req.end = self.last_end = time.monotonic()
        if not complete or "close" in headers.get("connection", "").lower():
            self.close()
        return status, headers, body, complete

    async def body(self, req, status, headers):
        if req.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return b"", True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await self.chunked(req)
        cl = headers.get("content-length")
        if cl is not None:
            if not cl.isdigit():
                raise Malformed("Content-Length " + cl)
            n = int(cl)
            while len(self.buf) < n:
                await self.fill(req)
            body = bytes(self.buf[:n])
            del self.buf[:n]
            return body, True
        try:  # delimited by the close
            while True:
                await self.fill(req)
        except Broken:
            body = bytes(self.buf)
            self.buf.clear()
            return body, True

    async def chunked(self, req):
        out = bytearray()
        while True:
            while (i := self.buf.find(b"\r\n")) < 0:
                await self.fill(req)
            size = bytes(self.buf[:i]).split(b";")[0].strip()
            try:
                n = int(size, 16)
            except ValueError:
                raise Malformed("chunk size %r" % size[:20]) from None
            del self.buf[:i + 2]
            if n == 0:
                while self.buf.find(b"\r\n\r\n") < 0 and not self.buf.startswith(b"\r\n"):
                    await self.fill(req)
                j = 2 if self.buf.startswith(b"\r\n") else self.buf.find(b"\r\n\r\n") + 4
                del self.buf[:j]
                return bytes(out), True
            while len(self.buf) < n + 2:
                await self.fill(req)
            out += self.buf[:n]
            del self.buf[:n + 2]


def parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise Malformed("status line %r" % lines[0][:60])
    headers = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if not sep:
            raise Malformed("header line %r" % line[:60])
        headers[k.strip().lower()] = v.strip()
    return int(parts[1]), headers


async def exchange(conn, reqs, checker):
    """Sends reqs pipelined and reads every answer; fills each Req's outcome."""
    if not conn.open:
        try:
            await conn.connect()
        except OSError:
            for r in reqs:
                r.sent = r.ref = r.end = time.monotonic()
                r.outcome = "connect-failed"
            return
    conn.send(reqs)
    for k, r in enumerate(reqs):
        if not conn.open:
            r.ref = r.end = max(r.sent, conn.last_end)
            r.outcome = "no-answer"
            continue
        try:
            status, headers, body, _ = await conn.answer(r)
        except Broken as e:
            r.outcome = str(e)
            conn.last_end = r.end
        except Hung:
            r.outcome, r.end = "hung", time.monotonic()
            conn.close()
            conn.last_end = r.end
        except Malformed as e:
            r.outcome, r.detail, r.end = "malformed", str(e), time.monotonic()
            conn.close()
            conn.last_end = r.end
        else:
            r.outcome, r.detail = checker.check(r, status, headers, body)


# --------------------------------------------------------------------------
# Checking answers against the origin's bytes.

class Checker:
    def __init__(self, repo):
        self.repo = repo
        self.sha = {}

    def index_sha(self, suite, name, v):
        key = (suite, name, v)
        if key not in self.sha:
            self.sha[key] = hashlib.sha256(self.repo.index(suite, name, v)).hexdigest()
        return self.sha[key]

    def check(self, r, status, headers, body):
        """(outcome, detail). Outcomes: ok, ok-206, ok-304, ok-head(-no-length), stale-N
        (an index N versions old), status-NNN, differs (detail: (length,
        prefix of an origin version, status and framing headers)),
        head-length (detail: length)."""
        out, detail = self.judge(r, status, headers, body)
        if out == "differs":
            framing = " ".join("%s=%s" % (h, headers[h]) for h in
                               ("content-length", "content-range", "transfer-encoding") if h in headers)
            detail = detail + ("%d %s" % (status, framing),)
        return out, detail

    def judge(self, r, status, headers, body):
        idx = split_index(r.rel)
        if status >= 500:
            return "status-%d" % status, None
        if r.method == "HEAD":
            if status != 200:
                return "status-%d" % status, None
            cl = headers.get("content-length")
            if cl is None:  # a GET would be chunked: the length is not known yet
                return "ok-head-no-length", None
            size = self.repo.files[r.rel][1]
            return ("ok-head", None) if cl == str(size) else ("head-length", int(cl) if cl.isdigit() else -1)
        if status == 304:
            conditional = any(h.lower().startswith(("if-modified-since", "if-none-match")) for h in r.headers)
            return ("ok-304", None) if conditional else ("status-304", None)
        if status == 206 and not idx:
            return self.check_part(r, headers, body)
        if status != 200:
            return "status-%d" % status, None
        if idx:
            digest = hashlib.sha256(body).hexdigest()
            now = self.repo.version(idx[0])
            for v in range(now, -1, -1):
                if self.index_sha(idx[0], idx[1], v) == digest:
                    return ("ok" if v >= now - 1 else "stale-%d" % (now - v)), v
            prefix = any(self.repo.index(idx[0], idx[1], v)[:len(body)] == body for v in range(now, -1, -1))
            return "differs", (len(body), prefix)
        want = self.repo.content(r.rel)
        if len(body) == len(want) and hashlib.sha256(body).hexdigest() == self.repo.files[r.rel][2]:
            return "ok", None
        return "differs", (len(body), want[:len(body)] == body)

    def check_part(self, r, headers, body):
        want = self.repo.content(r.rel)
        cr = headers.get("content-range", "")
        try:
            unit, rest = cr.split(" ", 1)
            span, total = rest.split("/")
            a, b = (int(x) for x in span.split("-"))
        except ValueError:
            return "malformed", "Content-Range %r" % cr
        asked = next((h for h in r.headers if h.lower().startswith("range:")), "")
        first = parse_range(asked.split(":", 1)[1].strip(), len(want)) if asked else None
        if unit != "bytes" or not total.isdigit() or not first or first[0] != a or b > first[1] \
                or b >= int(total) or len(body) != b - a + 1:
            return "differs", (len(body), False)
        same = bytes(want[a:b + 1]) == body
        if int(total) != len(want):
            # Right only if the origin announced that length: (total, bytes right).
            return "differs", (int(total), same)
        return ("ok-206", None) if same else ("differs", (len(body), False))


# --------------------------------------------------------------------------
# The clients: apt-like loops, and the hit-latency group.

class Chooser:
    """Which .deb a client installs: a new upload half the time (misses
    shared by many clients), else a Zipf-ish pick from the base pool."""

    def __init__(self, repo, zipf):
        self.repo = repo
        self.cum = {}
        for s, rels in repo.base.items():
            acc, cum = 0.0, []
            for rank in range(len(rels)):
                acc += 1.0 / (rank + 1) ** zipf
                cum.append(acc)
            self.cum[s] = cum

    def pick(self, rng, suite):
        v = self.repo.version(suite)
        fresh = [rel for e in (v, v - 1) for rel in self.repo.new[suite].get(e, [])]
        if fresh and rng.random() < 0.4:
            return rng.choice(fresh)
        cum = self.cum[suite]
        return self.repo.base[suite][bisect.bisect_left(cum, rng.random() * cum[-1])]


async def apt_client(n, addr, repo, chooser, checker, opts, stop_at, records, progress):
    rng = random.Random(opts.seed * 1000 + n)
    suites = rng.sample(SUITES, rng.randint(1, 2))
    conn = Conn(addr, opts.client_limit)
    have_lm = {}
    ims = "If-Modified-Since"
    while time.monotonic() < stop_at:
        update = []
        for s in suites:
            base = "dists/%s/" % s
            extra = ["%s: %s" % (ims, have_lm[s])] if s in have_lm and rng.random() < 0.3 else []
            update.append(Req("apt", "GET", base + "InRelease", ["Cache-Control: max-age=0"] + extra))
            if rng.random() < 0.1:
                update.append(Req("apt", "GET", base + "Release", ["Cache-Control: max-age=0"]))
            update.append(Req("apt", "GET", base + "main/binary-amd64/Packages.gz", ["Cache-Control: max-age=0"]))
            if rng.random() < 0.2:
                update.append(Req("apt", "GET", base + "main/binary-amd64/Packages", ["Cache-Control: max-age=0"]))
        await exchange(conn, update, checker)
        for r in update:
            if r.rel.endswith("/InRelease") and r.detail is not None and r.outcome == "ok":
                suite = r.rel.split("/")[1]
                have_lm[suite] = repo.last_modified(suite, r.detail)
        install = [Req("apt", "GET", chooser.pick(rng, rng.choice(suites))) for _ in range(rng.randint(1, 8))]
        roll = rng.random()
        if roll < 0.12:
            rel = chooser.pick(rng, rng.choice(suites))
            size = repo.files[rel][1]
            a = rng.randrange(0, size)
            spec = "bytes=%d-" % a if rng.random() < 0.5 else "bytes=%d-%d" % (a, min(size - 1, a + rng.randint(0, 65535)))
            hdrs = ["Range: " + spec] + (["If-Range: " + SOLID_LM] if rng.random() < 0.5 else [])
            install.insert(rng.randrange(len(install) + 1), Req("apt", "GET", rel, hdrs))
        elif roll < 0.18:
            install.insert(rng.randrange(len(install) + 1), Req("apt", "HEAD", chooser.pick(rng, rng.choice(suites))))
        await exchange(conn, install, checker)
        for r in update + install:
            records.append(r.record())
            progress[0] += 1
            if not r.outcome.startswith("ok"):
                progress[1] += 1
        await asyncio.sleep(rng.uniform(0.2, 2.0))
    conn.close()


async def hit_client(n, addr, repo, checker, opts, stop_at, records, latencies):
    rng = random.Random(opts.seed * 7919 + n)
    conn = Conn(addr, opts.client_limit)
    while time.monotonic() < stop_at:
        r = Req("hits", "GET", rng.choice(repo.warm))
        await exchange(conn, [r], checker)
        records.append(r.record())
        if r.outcome == "ok":
            latencies.append(r.end - r.sent)
        await asyncio.sleep(opts.hit_interval)
    conn.close()


def clients_main(role, repo, opts, addr, stop_at, out_path, progress):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    records, latencies = [], array("d")
    checker = Checker(repo)

    async def main():
        if role == "apt":
            chooser = Chooser(repo, opts.zipf)
            tasks = [apt_client(n, addr, repo, chooser, checker, opts, stop_at, records, progress)
                     for n in range(opts.clients)]
        else:
            tasks = [hit_client(n, addr, repo, checker, opts, stop_at, records, latencies)
                     for n in range(opts.hit_conns)]
        await asyncio.gather(*tasks)

    asyncio.run(main())
    with open(out_path, "wb") as f:
        pickle.dump({"records": records, "latencies": latencies}, f)


async def warm(addr, repo, opts):
    """Each warm file fetched twice in turn: the second must be a hit."""
    checker = Checker(repo)
    conn = Conn(addr, opts.client_limit)
    reqs = [Req("warm", "GET", rel) for rel in repo.warm for _ in range(2)]
    for r in reqs:
        await exchange(conn, [r], checker)
    conn.close()
    return reqs
