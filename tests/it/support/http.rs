//! A small HTTP/1.1 client over a plain socket, so tests control every byte:
//! pipelining, odd targets, reason phrases, cut bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A kept-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// Sends `METHOD target` with extra header lines.
    pub fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) {
        self.send_raw(request(method, target, headers).as_bytes());
    }

    /// Reads one response; HEAD responses have no body whatever they say.
    pub fn read(&mut self, head_only: bool) -> std::io::Result<Response> {
        let response = self.read_head()?;
        self.read_rest(response, head_only)
    }

    /// Reads the final response, passing over interim ones (`100 Continue`).
    pub fn read_final(&mut self, head_only: bool) -> std::io::Result<Response> {
        loop {
            let response = self.read_head()?;
            if !(100..200).contains(&response.status) {
                return self.read_rest(response, head_only);
            }
        }
    }

    /// Whether the server closes the connection, or resets it, with nothing
    /// more to send; `false` if a byte comes or nothing does within the read
    /// timeout. A daemon whose `NetworkTimeout` is under those 30 s closes
    /// an idle connection within them too.
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }

    /// The body of a response whose head was read.
    fn read_rest(&mut self, mut response: Response, head_only: bool) -> std::io::Result<Response> {
        if head_only || response.status == 304 || response.status == 204 {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"));
        match response.header("content-length").map(|v| v.parse::<usize>()) {
            _ if chunked => response.body = self.read_chunked()?,
            Some(Ok(len)) => {
                let mut body = vec![0; len];
                self.reader.read_exact(&mut body)?;
                response.body = body;
            }
            _ => {
                self.reader.read_to_end(&mut response.body)?;
            }
        }
        Ok(response)
    }

    fn read_chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            self.reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            let mut crlf = String::new();
            self.reader.read_line(&mut crlf)?;
            if size == 0 {
                return Ok(body);
            }
        }
    }

    /// Reads a status line and headers, leaving the body unread.
    pub fn read_head(&mut self) -> std::io::Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut parts = line.trim_end().splitn(3, ' ');
        let _version = parts.next();
        let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Ok(Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        })
    }

    /// Reads up to `n` body bytes: fewer only when the connection ends (a
    /// cut transfer), an error if it breaks.
    pub fn read_body(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::with_capacity(n);
        (&mut self.reader).take(n as u64).read_to_end(&mut body)?;
        Ok(body)
    }

    /// Reads the body as it comes, chunk framing and all, a line at a time
    /// until `needle` is among what was read; returns what was read.
    pub fn read_raw_until(&mut self, needle: &str) -> std::io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        while !String::from_utf8_lossy(&raw).contains(needle) {
            if self.reader.read_until(b'\n', &mut raw)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(raw)
    }

    /// The rest of the body's raw bytes, to the end of the connection.
    pub fn read_raw_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        self.reader.read_to_end(&mut raw)?;
        Ok(raw)
    }

    pub fn get(&mut self, target: &str, headers: &[(&str, &str)]) -> Response {
        self.send("GET", target, headers);
        self.read(false).expect("response")
    }
}

/// A whole chunked body decoded; `None` if its framing is broken or it
/// lacks the last chunk.
pub fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[..end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

pub fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    Conn::open(addr).get(target, &[])
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
