"""The mock origin of benches/soak.py: a repository generated from a seed
and the clock, served with faults injected at random."""

import asyncio
import email.utils
import gzip
import hashlib
import math
import os
import pickle
import random
import signal
import socket
import struct
import time
from array import array


# --------------------------------------------------------------------------
# The repository, a pure function of the seed and the clock.

SUITES = ("alpha", "beta", "gamma")
POOL_BYTES = 32 << 20
SOLID_LM = "Mon, 01 Jan 2024 00:00:00 GMT"
WARM_DIR = "pool/main/w/warm/"
INDEX_NAMES = ("InRelease", "Release", "main/binary-amd64/Packages",
               "main/binary-amd64/Packages.gz")


def file_size(rng):
    r = rng.random()
    lo, hi = (1 << 10, 64 << 10) if r < 0.85 else (64 << 10, 1 << 20) if r < 0.97 else (1 << 20, 8 << 20)
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


class Repo:
    """Files, sizes and digests are computed once in the parent; every
    process forked afterwards shares them."""

    def __init__(self, seed, base_files, new_per_epoch, period, epochs, warm_files):
        self.period = period
        self.t0 = time.monotonic()
        self.wall0 = int(time.time()) - 86400
        self.pool = memoryview(random.Random(seed).randbytes(POOL_BYTES))
        self.files = {}      # rel -> (offset, size, sha256 hex)
        self.base = {}       # suite -> [rel], in Zipf rank order
        self.new = {}        # suite -> {epoch: [rel]}
        self.epoch_of = {}   # rel of a new file -> (suite, epoch it appears)
        rng = random.Random(seed + 1)
        per_suite = max(1, base_files // len(SUITES))
        for s in SUITES:
            self.base[s] = [self._add(pool_path(s, "pkg%04d" % j, "1.0"), file_size(rng))
                            for j in range(per_suite)]
            self.new[s] = {}
            for v in range(1, epochs + 1):
                rels = [self._add(pool_path(s, "new%03d-%02d" % (v, j), "%d.0" % v), file_size(rng))
                        for j in range(new_per_epoch)]
                self.new[s][v] = rels
                for rel in rels:
                    self.epoch_of[rel] = (s, v)
        self.warm = [self._add("%swarm%02d_1.0_amd64.deb" % (WARM_DIR, j),
                               int(math.exp(rng.uniform(math.log(1 << 10), math.log(100 << 10)))))
                     for j in range(warm_files)]
        self._index = {}

    def _add(self, rel, size):
        off = int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "big") % (POOL_BYTES - size)
        self.files[rel] = (off, size, hashlib.sha256(self.pool[off:off + size]).hexdigest())
        return rel

    def content(self, rel):
        off, size, _ = self.files[rel]
        return self.pool[off:off + size]

    def version(self, suite, now=None):
        now = time.monotonic() if now is None else now
        i = SUITES.index(suite)
        return max(0, int((now - self.t0) / self.period + i / len(SUITES)))

    def exists(self, rel, now=None):
        if rel not in self.files:
            return False
        born = self.epoch_of.get(rel)
        return born is None or self.version(born[0], now) >= born[1]

    def last_modified(self, suite, v):
        return email.utils.formatdate(self.wall0 + v * self.period + SUITES.index(suite), usegmt=True)

    def index(self, suite, name, v):
        """The bytes of dists/SUITE/NAME at version v."""
        key = (suite, name, v)
        if key not in self._index:
            if len(self._index) > 400:
                self._index.clear()
            self._index[key] = self._make_index(suite, name, v)
        return self._index[key]

    def _make_index(self, suite, name, v):
        if name == "main/binary-amd64/Packages":
            rels = list(self.base[suite])
            for e in range(1, v + 1):
                rels += self.new[suite].get(e, [])
            out = ["Package: soak-epoch\nVersion: %d\nArchitecture: all\nSize: 0\n" % v]
            for rel in rels:
                _, size, sha = self.files[rel]
                pkg, ver, _ = rel.rsplit("/", 1)[1].split("_")
                out.append("Package: %s\nVersion: %s\nArchitecture: amd64\nFilename: %s\n"
                           "Size: %d\nSHA256: %s\nDescription: soak file\n" % (pkg, ver, rel, size, sha))
            return "\n".join(out).encode()
        if name == "main/binary-amd64/Packages.gz":
            return gzip.compress(self.index(suite, "main/binary-amd64/Packages", v), 6, mtime=0)
        release = ["Origin: soak", "Label: soak", "Suite: " + suite, "Codename: " + suite,
                   "Version: %d" % v, "Date: " + self.last_modified(suite, v),
                   "Architectures: amd64", "Components: main", "SHA256:"]
        for part in ("main/binary-amd64/Packages", "main/binary-amd64/Packages.gz"):
            b = self.index(suite, part, v)
            release.append(" %s %d %s" % (hashlib.sha256(b).hexdigest(), len(b), part))
        text = "\n".join(release) + "\n"
        if name == "Release":
            return text.encode()
        sig = hashlib.sha256(text.encode()).hexdigest()
        return ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n%s"
                "-----BEGIN PGP SIGNATURE-----\n\n%s\n-----END PGP SIGNATURE-----\n" % (text, sig)).encode()


def pool_path(suite, name, ver):
    pkg = "%s-%s" % (suite, name)
    return "pool/main/%s/%s/%s_%s_amd64.deb" % (pkg[0], pkg, pkg, ver)


def split_index(rel):
    """(suite, name) for a dists/ path, else None."""
    parts = rel.split("/", 2)
    if len(parts) == 3 and parts[0] == "dists" and parts[1] in SUITES and parts[2] in INDEX_NAMES:
        return parts[1], parts[2]
    return None


def etag_of(data):
    return '"%s"' % hashlib.sha256(data).hexdigest()[:20]


# --------------------------------------------------------------------------
# The mock origin: a process of its own, so its work does not delay the
# clients' clocks.

FAULT_WEIGHTS = {"cut": 3, "stall": 3, "5xx": 3, "wrong-length": 2, "reset": 3,
                 "slow": 2, "ignore-range": 2, "chunk-garbage": 2}
NEEDS_BODY = {"cut", "wrong-length", "slow", "chunk-garbage"}


class OriginLog:
    """Compact: a storm can make millions of requests."""

    def __init__(self):
        self.t = array("d")
        self.end = array("d")
        self.key = array("i")      # index into keys: (method, rel)
        self.fault = array("i")    # index into faults
        self.status = array("i")
        self.keys, self._key_ids = [], {}
        self.faults, self._fault_ids = [], {}
        self.short = set()         # (rel, announced length) of short Content-Lengths

    def _id(self, table, ids, value):
        if value not in ids:
            ids[value] = len(table)
            table.append(value)
        return ids[value]

    def arrived(self, t, method, rel):
        """Logs a request as it arrives (a stall may outlast the run);
        returns its index for finished()."""
        self.t.append(t)
        self.end.append(0.0)
        self.key.append(self._id(self.keys, self._key_ids, (method, rel)))
        self.fault.append(self._id(self.faults, self._fault_ids, "unfinished"))
        self.status.append(0)
        return len(self.t) - 1

    def finished(self, i, fault, status, end):
        self.end[i] = end
        self.fault[i] = self._id(self.faults, self._fault_ids, fault)
        self.status[i] = status

    def dump(self):
        return {"t": self.t, "end": self.end, "key": self.key, "fault": self.fault,
                "status": self.status, "keys": self.keys, "faults": self.faults, "short": self.short}


class Origin:
    def __init__(self, repo, opts, fault_rate):
        self.repo = repo
        self.rate = fault_rate
        self.weights = opts.fault_weights
        self.chunked_share = opts.chunked
        self.rng = random.Random(opts.seed + 7)
        self.stall_max = opts.stall_max
        self.sticky_share = opts.sticky
        self.sticky = {}  # rel -> (fault, until)
        self.log = OriginLog()

    async def serve(self, reader, writer):
        sock = writer.get_extra_info("socket")
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    break
                arrived = time.monotonic()
                lines = raw.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    break
                headers = {}
                for line in lines[1:]:
                    k, sep, v = line.partition(":")
                    if sep:
                        headers[k.strip().lower()] = v.strip()
                rel = target.split("?", 1)[0]
                rel = rel[len("/debian/"):] if rel.startswith("/debian/") else rel.lstrip("/")
                keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
                i = self.log.arrived(arrived, method, rel)
                try:
                    fault, status, keep = await self.respond(writer, sock, method, rel, headers, keep)
                except (ConnectionError, OSError):
                    self.log.finished(i, "closed by the daemon", 0, time.monotonic())
                    break
                self.log.finished(i, fault, status, time.monotonic())
                if not keep:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def plan(self, method, rel, headers, use_range=True):
        """(status, header lines, body) of the honest answer."""
        now = time.monotonic()
        idx = split_index(rel)
        if idx:
            v = self.repo.version(idx[0], now)
            entity = self.repo.index(idx[0], idx[1], v)
            lm = self.repo.last_modified(idx[0], v)
        elif self.repo.exists(rel, now):
            entity = self.repo.content(rel)
            lm = SOLID_LM
        else:
            return 404, [], b"not found\n"
        _, _, sha = self.repo.files.get(rel, (0, 0, None))
        etag = '"%s"' % sha[:20] if sha else etag_of(entity)
        meta = ["ETag: " + etag, "Last-Modified: " + lm]
        inm, ims = headers.get("if-none-match"), headers.get("if-modified-since")
        if inm is not None:
            if etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*":
                return 304, meta, b""
        elif ims and not_modified_since(ims, lm):
            return 304, meta, b""
        rng = headers.get("range") if use_range else None
        if_range = headers.get("if-range")
        if rng and (if_range is None or if_range in (etag, lm)):
            span = parse_range(rng, len(entity))
            if span == "unsatisfiable":
                return 416, ["Content-Range: bytes */%d" % len(entity)], b""
            if span:
                a, b = span
                return 206, meta + ["Content-Range: bytes %d-%d/%d" % (a, b, len(entity))], entity[a:b + 1]
        return 200, meta, entity

    def choose_fault(self, method, rel, status, body):
        """A fault or None; (fault, True) when it repeats a sticky one."""
        if self.rate <= 0 or rel.startswith(WARM_DIR):
            return None, False
        has_body = method == "GET" and len(body) > 0
        kinds = [k for k, w in self.weights.items()
                 if w > 0 and (has_body or k not in NEEDS_BODY) and (k != "ignore-range" or status in (206, 416))]
        stuck = self.sticky.get(rel)
        if stuck and stuck[1] > time.monotonic():
            if stuck[0] in kinds:
                return stuck[0], True
        elif stuck:
            del self.sticky[rel]
        if not kinds or self.rng.random() >= self.rate:
            return None, False
        fault = self.rng.choices(kinds, [self.weights[k] for k in kinds])[0]
        if self.rng.random() < self.sticky_share:
            # A mirror whose copy is broken: the same fault for a while,
            # whoever asks and however often.
            self.sticky[rel] = (fault, time.monotonic() + self.rng.uniform(20, 120))
        return fault, False

    async def respond(self, writer, sock, method, rel, headers, keep):
        """Answers, perhaps wrongly; returns (fault, status, keep the connection)."""
        status, meta, body = self.plan(method, rel, headers)
        fault, repeated = self.choose_fault(method, rel, status, body)
        fault, status, keep = await self.misbehave(writer, sock, method, rel, headers, keep,
                                                   fault, status, meta, body)
        return (fault or "none") + (" (sticky)" if repeated else ""), status, keep

    async def misbehave(self, writer, sock, method, rel, headers, keep, fault, status, meta, body):
        rng = self.rng
        if fault == "ignore-range":
            status, meta, body = self.plan(method, rel, headers, use_range=False)
        elif fault == "5xx":
            status, meta, body = rng.choice((500, 502, 503)), [], b"soak: injected error\n"
        send_body = method != "HEAD" and status not in (204, 304)
        framing = len(body)
        chunked = (send_body and body and fault not in ("wrong-length", "chunk-garbage")
                   and rng.random() < self.chunked_share)
        if chunked:
            # As many servers send: chunks, the last one empty. A cut or a
            # stall falls anywhere before the end of that last chunk.
            meta = meta + ["Transfer-Encoding: chunked"]
            step = rng.choice((1 << 12, 1 << 14, 1 << 16))
            body = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + step]), body[i:i + step])
                            for i in range(0, len(body), step)) + b"0\r\n\r\n"
            framing = None
        length = len(body)
        cut = rng.randrange(0, length - 4 if chunked else length) if length else 0
        suffix = " (chunked)" if chunked else ""

        def head(code, lines, cl=framing):
            return ("HTTP/1.1 %d %s\r\n%s\r\n" % (code, REASONS.get(code, "Status"), "".join(
                h + "\r\n" for h in lines + ["Date: " + email.utils.formatdate(usegmt=True),
                                             "Content-Type: application/octet-stream"]
                + ([] if cl is None else ["Content-Length: %d" % cl])))).encode()

        if fault in ("stall", "reset"):
            variants = ["head", "headers"] + (["body"] if send_body and length else [])
            if not send_body:
                variants.remove("headers")  # a bodiless answer would be complete
            where = rng.choice(variants)
            fault += "-" + where
            if where != "head":
                writer.write(head(status, meta))
            if where == "body":
                writer.write(body[:cut])
            await writer.drain()
            if fault.startswith("stall"):
                await asyncio.sleep(rng.uniform(20, self.stall_max))
                writer.close()
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            return fault + suffix, status, False
        if fault == "cut":
            writer.write(head(status, meta) + body[:cut])
            await writer.drain()
            writer.close()
            return fault + suffix, status, False
        if fault == "wrong-length":
            if status == 200 and length >= 2 and rng.random() < 0.5:
                announced = rng.randrange(1, length)
                self.log.short.add((rel, announced))
                fault += "-fewer"
            else:
                announced = length + rng.randint(1, max(1, min(length, 100000)))
                fault += "-more"
            writer.write(head(status, meta, announced))
            writer.write(body)
            await writer.drain()
            writer.close()
            return fault, status, False
        if fault == "chunk-garbage":
            writer.write(head(status, meta + ["Transfer-Encoding: chunked"], None))
            pos = 0
            for _ in range(rng.randint(0, 3)):
                n = rng.randint(1, max(1, (cut - pos) // 2 + 1))
                if pos + n > cut:
                    break
                writer.write(b"%x\r\n" % n + body[pos:pos + n] + b"\r\n")
                pos += n
            writer.write(b"zz\r\nthis is not a chunk\r\n")
            await writer.drain()
            if rng.random() < 0.5:
                await asyncio.sleep(rng.uniform(10, 60))
            writer.close()
            return fault, status, False
        writer.write(head(status, meta))
        if send_body:
            pos = 0
            if fault == "slow":
                until = time.monotonic() + rng.uniform(2, 6)
                while pos < length and time.monotonic() < until:
                    n = rng.randint(256, 8192)
                    writer.write(body[pos:pos + n])
                    pos += n
                    await writer.drain()
                    await asyncio.sleep(rng.uniform(0.1, 1.0))
            while pos < length:
                writer.write(body[pos:pos + (256 << 10)])
                pos += 256 << 10
                await writer.drain()
        await writer.drain()
        return (fault or "none") + suffix, status, keep


REASONS = {200: "OK", 206: "Partial Content", 304: "Not Modified", 404: "Not Found",
           416: "Range Not Satisfiable", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable"}


def not_modified_since(ims, lm):
    try:
        return email.utils.parsedate_to_datetime(ims) >= email.utils.parsedate_to_datetime(lm)
    except (TypeError, ValueError):
        return False


def parse_range(value, length):
    """(first, last) of a single byte range, "unsatisfiable", or None to
    ignore the header (RFC 9110 14.2)."""
    if not value.startswith("bytes=") or "," in value:
        return None
    a, sep, b = value[6:].strip().partition("-")
    if not sep:
        return None
    if not a:
        if not b.isdigit() or int(b) == 0 or length == 0:
            return "unsatisfiable"
        return max(0, length - int(b)), length - 1
    if not a.isdigit() or (b and not b.isdigit()):
        return None
    first, last = int(a), int(b) if b else length - 1
    if b and first > last:
        return None
    if first >= length:
        return "unsatisfiable"
    return first, min(last, length - 1)


def origin_main(repo, opts, fault_rate, ctl):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    origin = Origin(repo, opts, fault_rate)

    async def main():
        server = await asyncio.start_server(origin.serve, "127.0.0.1", 0, backlog=1024, limit=1 << 16)
        ctl.send(server.sockets[0].getsockname()[1])
        done = asyncio.Event()
        asyncio.get_running_loop().add_reader(ctl.fileno(), done.set)
        await done.wait()
        path = ctl.recv()
        server.close()
        with open(path, "wb") as f:
            pickle.dump(origin.log.dump(), f)
        ctl.send("dumped")
        os._exit(0)  # not waiting for the stalls, nor cancelling them noisily

    asyncio.run(main())
