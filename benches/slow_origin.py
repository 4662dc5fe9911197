"""A static origin for the benchmarks that answers each .deb request DELAY_MS
after the request arrived (other files at once), like a mirror at the far end
of a link with that latency: pipelined requests are read as they come and
answered in order, so their delays overlap. Supports single Range requests
and HEAD. Appends "METHOD PATH STATUS BYTES" to LOG per request.

    python3 benches/slow_origin.py PORT ROOT DELAY_MS LOG
"""
import asyncio, email.utils, os, sys, time, urllib.parse

port, root, delay, log_path = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]) / 1000, sys.argv[4]
log = open(log_path, "a", buffering=1)

async def respond(writer, method, path, headers, keep):
    fs = os.path.normpath(os.path.join(root, urllib.parse.unquote(path).lstrip("/")))
    if not fs.startswith(root + "/") or not os.path.isfile(fs):
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n%s\r\n"
                     % (b"" if keep else b"Connection: close\r\n"))
        log.write("%s %s 404 0\n" % (method, path))
        return
    st = os.stat(fs)
    start, end, status = 0, st.st_size - 1, "200 OK"
    rng = headers.get("range", "")
    if rng.startswith("bytes=") and "," not in rng:
        a, _, b = rng[6:].partition("-")
        if a.isdigit() and int(a) < st.st_size:
            start, end, status = int(a), min(int(b), end) if b.isdigit() else end, "206 Partial Content"
    length = end - start + 1
    head = ["HTTP/1.1 " + status, "Content-Length: %d" % length,
            "Content-Type: application/octet-stream",
            "Date: " + email.utils.formatdate(usegmt=True),
            "Last-Modified: " + email.utils.formatdate(st.st_mtime, usegmt=True)]
    if status.startswith("206"):
        head.append("Content-Range: bytes %d-%d/%d" % (start, end, st.st_size))
    if not keep:
        head.append("Connection: close")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    if method != "HEAD":
        with open(fs, "rb") as f:
            f.seek(start)
            left = length
            while left:
                chunk = f.read(min(left, 1 << 20))
                writer.write(chunk)
                left -= len(chunk)
                await writer.drain()
    log.write("%s %s %s %d\n" % (method, path, status[:3], 0 if method == "HEAD" else length))

async def handle(reader, writer):
    queue = asyncio.Queue()

    async def read_requests():
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                arrived = time.monotonic()
                lines = raw.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                path = urllib.parse.urlsplit(target).path or "/"
                conn = headers.get("connection", "").lower()
                keep = "close" not in conn if version == "HTTP/1.1" else "keep-alive" in conn
                await queue.put((arrived, method, path, headers, keep))
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        await queue.put(None)

    reading = asyncio.create_task(read_requests())
    try:
        while (item := await queue.get()) is not None:
            arrived, method, path, headers, keep = item
            if path.endswith(".deb"):
                await asyncio.sleep(max(0.0, arrived + delay - time.monotonic()))
            await respond(writer, method, path, headers, keep)
            await writer.drain()
            if not keep:
                break
    except ConnectionError:
        pass
    finally:
        reading.cancel()
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()

asyncio.run(main())
