//! The `.head` sidecar: the response metadata stored beside each cached
//! file, in apt-cacher-ng 3.7's format so that both programs read each
//! other's cache (spec §6.2):
//!
//! ```text
//! HTTP/1.1 200 OK\r\n
//! Content-Length: 300000\r\n                        (absent while incomplete)
//! Last-Modified: Sun, 22 Nov 2026 02:33:41 GMT\r\n
//! X-Original-Source: http://deb.debian.org/debian/pool/...\r\n
//! ETag: "5f3c-61b0"\r\n                              (debcache)
//! X-Debcache-Expected-Length: 300000\r\n             (debcache, while incomplete)
//! \r\n
//! ```
//!
//! Reading follows acng: the first line must start with `HTTP/1.1 200`;
//! known lines are matched by exact, case-sensitive prefixes; anything else
//! is kept and written back unchanged. CRLF and LF line ends both read.

use std::fmt;

/// Larger sidecars are not metadata (older acng versions stored whole
/// upstream headers, still far below this).
pub const MAX_HEAD_SIZE: usize = 64 * 1024;
/// Longer values of the known lines are garbage, not metadata (a URL in
/// `X-Original-Source` is the longest real one, a few hundred bytes).
const MAX_VALUE: usize = 4096;
/// How much of the unknown lines is kept, as written back. With the known
/// lines at their longest the whole stays under [`MAX_HEAD_SIZE`]: what is
/// written must read back, though CRLF and replaced invalid UTF-8 make the
/// written form longer than what was read.
const MAX_OTHER: usize = MAX_HEAD_SIZE / 2;

/// A parsed `.head` of a `200` response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// The full length; present only once the file is complete (or, in acng's
    /// own heads, from the start of the download).
    pub content_length: Option<u64>,
    pub last_modified: Option<String>,
    /// The upstream URL the data came from (after redirects).
    pub original_source: Option<String>,
    pub etag: Option<String>,
    /// The length upstream announced, kept while the file is incomplete.
    pub expected_length: Option<u64>,
    /// Lines this version does not know, in order.
    pub other: Vec<String>,
}

/// Why a sidecar does not describe a servable `200` response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    /// The status line is not `HTTP/1.1 200…`: an error head (acng leaves
    /// one behind after an upstream 404) or garbage.
    NotOk(String),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => write!(f, "larger than {MAX_HEAD_SIZE} bytes"),
            HeadError::NotOk(line) => write!(f, "status line is not HTTP/1.1 200: {line:?}"),
        }
    }
}

impl std::error::Error for HeadError {}

impl Head {
    pub fn parse(bytes: &[u8]) -> Result<Head, HeadError> {
        if bytes.len() > MAX_HEAD_SIZE {
            return Err(HeadError::TooLarge);
        }
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let status = lines.next().unwrap_or_default();
        if !status.starts_with("HTTP/1.1 200") {
            return Err(HeadError::NotOk(status.chars().take(80).collect()));
        }
        let mut head = Head::default();
        let mut other_len = 0;
        let text = |v: &str| {
            Some(v.trim())
                .filter(|v| v.len() <= MAX_VALUE)
                .map(str::to_string)
        };
        for line in lines {
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length:") {
                head.content_length = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("Last-Modified: ") {
                head.last_modified = text(v);
            } else if let Some(v) = line.strip_prefix("X-Original-Source: ") {
                head.original_source = text(v);
            } else if let Some(v) = line.strip_prefix("ETag: ") {
                head.etag = text(v);
            } else if let Some(v) = line.strip_prefix("X-Debcache-Expected-Length: ") {
                head.expected_length = v.trim().parse().ok();
            } else if other_len + line.len() + 2 <= MAX_OTHER {
                other_len += line.len() + 2;
                head.other.push(line.to_string());
            }
        }
        Ok(head)
    }

    /// The sidecar text, CRLF-terminated as acng writes it.
    pub fn render(&self) -> String {
        let mut out = String::from("HTTP/1.1 200 OK\r\n");
        let mut line = |name: &str, value: &dyn fmt::Display| {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&value.to_string());
            out.push_str("\r\n");
        };
        if let Some(n) = self.content_length {
            line("Content-Length", &n);
        }
        if let Some(v) = &self.last_modified {
            line("Last-Modified", v);
        }
        if let Some(v) = &self.original_source {
            line("X-Original-Source", v);
        }
        if let Some(v) = &self.etag {
            line("ETag", v);
        }
        if let Some(n) = self.expected_length {
            line("X-Debcache-Expected-Length", &n);
        }
        for other in &self.other {
            out.push_str(other);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out
    }

    /// The bytes came over TLS: the source recorded is an https URL (acng
    /// records it the same way). Compared as bytes: the sidecar's text may
    /// have a character across the eighth byte.
    pub fn came_over_tls(&self) -> bool {
        self.original_source
            .as_deref()
            .is_some_and(|s| s.len() > 8 && s.as_bytes()[..8].eq_ignore_ascii_case(b"https://"))
    }

    /// acng's completeness rule: the data is whole when its size equals the
    /// stored `Content-Length`.
    pub fn is_complete(&self, data_len: u64) -> bool {
        self.content_length == Some(data_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACNG_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1550\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\nX-Original-Source: http://127.0.0.1:28080/debian/pool/main/s/synth-lib01/synth-lib01_1.01-1_all.deb\r\n\r\n";

    #[test]
    fn reads_what_apt_cacher_ng_writes() {
        let head = Head::parse(ACNG_HEAD).unwrap();
        assert_eq!(head.content_length, Some(1550));
        assert_eq!(
            head.last_modified.as_deref(),
            Some("Sun, 22 Nov 2026 02:58:26 GMT")
        );
        assert!(head
            .original_source
            .unwrap()
            .ends_with("synth-lib01_1.01-1_all.deb"));
        assert!(head.other.is_empty());
    }

    #[test]
    fn the_source_says_whether_the_bytes_came_over_tls() {
        let source = |url: &str| {
            Head::parse(format!("HTTP/1.1 200 OK\r\nX-Original-Source: {url}\r\n\r\n").as_bytes())
                .unwrap()
                .came_over_tls()
        };
        assert!(source("HTTPS://deb.example/d/InRelease"));
        assert!(!source("http://deb.example/d/InRelease"));
        // A character across the eighth byte (`é` is bytes 7 and 8).
        assert!(!source("http://éxample.org/dists/x/InRelease"));
        assert!(!source("https://"));
    }

    #[test]
    fn writes_it_back_byte_for_byte() {
        assert_eq!(Head::parse(ACNG_HEAD).unwrap().render().as_bytes(), ACNG_HEAD);
    }

    #[test]
    fn unknown_lines_are_kept_and_lf_is_accepted() {
        let head = Head::parse(b"HTTP/1.1 200 OK\nContent-Length:7\nServer: nginx\nETag: \"x\"\n\nignored: after the blank line\n").unwrap();
        assert_eq!(head.content_length, Some(7));
        assert_eq!(head.etag.as_deref(), Some("\"x\""));
        assert_eq!(head.other, ["Server: nginx"]);
        assert!(head.render().contains("Server: nginx\r\n"));
    }

    #[test]
    fn prefixes_are_exact_and_case_sensitive() {
        let head =
            Head::parse(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nLast-Modified:no-space\r\n").unwrap();
        assert_eq!(head.content_length, None);
        assert_eq!(head.last_modified, None);
        assert_eq!(head.other.len(), 2);
    }

    #[test]
    fn only_a_200_head_describes_data() {
        assert!(matches!(
            Head::parse(b"HTTP/1.1 404 Not Found\r\n\r\n"),
            Err(HeadError::NotOk(_))
        ));
        assert!(matches!(Head::parse(b""), Err(HeadError::NotOk(_))));
        assert!(matches!(
            Head::parse(b"HTTP/1.0 200 OK\r\n"),
            Err(HeadError::NotOk(_))
        ));
        assert!(matches!(
            Head::parse(&vec![b'x'; MAX_HEAD_SIZE + 1]),
            Err(HeadError::TooLarge)
        ));
    }

    #[test]
    fn complete_only_when_sizes_agree() {
        let head = Head::parse(ACNG_HEAD).unwrap();
        assert!(head.is_complete(1550));
        assert!(!head.is_complete(1549) && !head.is_complete(1551));
        let partial = Head {
            expected_length: Some(1550),
            ..Head::default()
        };
        assert!(!partial.is_complete(1550), "no Content-Length: never complete");
    }

    #[test]
    fn head_that_grows_when_written_still_reads_back() {
        // Found by fuzzing: 30,000 LF-terminated unknown lines fit the limit,
        // written back with CRLF they did not, and the file became unreadable.
        let mut lf = b"HTTP/1.1 200 OK\nContent-Length: 7\n".to_vec();
        lf.extend(b"X\n".repeat(30_000));
        let mut invalid = b"HTTP/1.1 200 OK\r\nETag: ".to_vec();
        invalid.extend([0xff; 40_000]);
        invalid.extend(b"\r\nX: ");
        invalid.extend([0xff; 20_000]);
        assert_eq!(Head::parse(&lf).unwrap().content_length, Some(7));
        for bytes in [lf, invalid] {
            let head = Head::parse(&bytes).unwrap();
            let written = head.render();
            assert!(written.len() <= MAX_HEAD_SIZE, "{}", written.len());
            assert_eq!(Head::parse(written.as_bytes()).unwrap(), head);
        }
    }

    #[test]
    fn garbage_lengths_read_as_unknown() {
        let head =
            Head::parse(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\nX-Debcache-Expected-Length: lots\r\n")
                .unwrap();
        assert_eq!((head.content_length, head.expected_length), (None, None));
    }
}
