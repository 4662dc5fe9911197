//! The `Content-Type` of a file served from `LocalDirs` (spec §2.7): by its
//! extension from `/etc/mime.types` (read once, on first use, at most
//! [`MAX_TABLE`] bytes of it), then from a small table of the common types;
//! failing both, `text/plain` when the first [`SNIFF`] bytes are ASCII, else
//! `application/octet-stream`.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

/// The system's table of extensions.
const SYSTEM_TABLE: &str = "/etc/mime.types";

/// More than any `mime.types` ships (Debian's is 74 KB); a larger file is
/// read this far and no further.
const MAX_TABLE: u64 = 1024 * 1024;

/// How many leading bytes decide between text and binary.
pub const SNIFF: usize = 255;

/// For systems without `/etc/mime.types`, the types a documentation or
/// package directory holds most.
const BUILT_IN: &[(&str, &str)] = &[
    ("html", "text/html"),
    ("htm", "text/html"),
    ("css", "text/css"),
    ("txt", "text/plain"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("svg", "image/svg+xml"),
    ("js", "text/javascript"),
    ("json", "application/json"),
    ("pdf", "application/pdf"),
    ("gz", "application/gzip"),
    ("xz", "application/x-xz"),
    ("bz2", "application/x-bzip2"),
    ("deb", "application/vnd.debian.binary-package"),
];

/// Extensions (lower case, without the dot) to types.
#[derive(Debug, Default)]
pub struct Table(HashMap<String, String>);

impl Table {
    /// Parses `mime.types`: `type ext ext …` per line, `#` comments.
    pub fn parse(text: &str) -> Table {
        let mut map = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            // Only what can go in a header as it is.
            let Some(mime) = words
                .next()
                .filter(|m| m.contains('/') && m.bytes().all(|b| b.is_ascii_graphic()))
            else {
                continue;
            };
            for ext in words {
                map.entry(ext.to_ascii_lowercase())
                    .or_insert_with(|| mime.to_string());
            }
        }
        Table(map)
    }

    /// The system's table, read on first use; empty when there is none.
    pub fn system() -> &'static Table {
        static TABLE: OnceLock<Table> = OnceLock::new();
        TABLE.get_or_init(|| {
            let mut text = String::new();
            match std::fs::File::open(SYSTEM_TABLE).and_then(|f| f.take(MAX_TABLE).read_to_string(&mut text))
            {
                Ok(_) => Table::parse(&text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::default(),
                Err(e) => {
                    tracing::warn!("{SYSTEM_TABLE}: {e}; LocalDirs use the built-in types");
                    Table::default()
                }
            }
        })
    }

    /// The type for a file name by its extension, the longest first
    /// (`a.tar.gz`: `tar.gz`, then `gz`), here and then in the built-in
    /// table.
    pub fn by_name(&self, name: &str) -> Option<&str> {
        let lower = name.to_ascii_lowercase();
        let suffixes = || {
            lower
                .match_indices('.')
                .map(|(i, _)| &lower[i + 1..])
                .filter(|ext| !ext.is_empty())
        };
        suffixes()
            .find_map(|ext| self.0.get(ext).map(String::as_str))
            .or_else(|| suffixes().find_map(|ext| BUILT_IN.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t)))
    }

    /// The type for `name`, whose first bytes are `head` (up to [`SNIFF`]
    /// of them; consulted only when the name says nothing).
    pub fn content_type<'a>(&'a self, name: &str, head: impl FnOnce() -> Vec<u8>) -> &'a str {
        if let Some(mime) = self.by_name(name) {
            return mime;
        }
        let head = head();
        if head.iter().take(SNIFF).all(u8::is_ascii) {
            "text/plain"
        } else {
            "application/octet-stream"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# comment\n\
        application/gzip\t\t\t\tgz\n\
        application/vnd.debian.binary-package\t\tdeb ddeb udeb\n\
        application/x-nothing\n\
        text/plain\t\ttxt text # trailing\n\
        application/cwl+json\t\tcwl.json\n\
        nonsense word\n\
        t\u{e9}xt/plain accent\n";

    #[test]
    fn extensions_come_from_the_table_case_blind() {
        let table = Table::parse(SAMPLE);
        assert_eq!(
            table.by_name("hello_1.0_amd64.DEB"),
            Some("application/vnd.debian.binary-package")
        );
        assert_eq!(
            table.by_name("x.udeb"),
            Some("application/vnd.debian.binary-package")
        );
        assert_eq!(table.by_name("changelog.Debian.gz"), Some("application/gzip"));
        assert_eq!(table.by_name("README.text"), Some("text/plain"));
        assert_eq!(table.by_name("flow.cwl.json"), Some("application/cwl+json"));
        assert_eq!(table.by_name("word"), None, "a line without a type/subtype");
        assert_eq!(table.by_name("x.accent"), None, "a type no header can carry");
    }

    #[test]
    fn the_built_in_table_fills_in() {
        let table = Table::parse(SAMPLE);
        assert_eq!(table.by_name("index.html"), Some("text/html"));
        assert_eq!(table.by_name("a.tar.bz2"), Some("application/x-bzip2"));
        assert_eq!(Table::default().by_name("style.CSS"), Some("text/css"));
        assert_eq!(Table::default().by_name("Makefile"), None);
        assert_eq!(Table::default().by_name("trailing."), None);
    }

    #[test]
    fn unknown_names_are_sniffed() {
        let table = Table::default();
        assert_eq!(
            table.content_type("README", || b"plain words\n".to_vec()),
            "text/plain"
        );
        assert_eq!(table.content_type("empty", Vec::new), "text/plain");
        assert_eq!(
            table.content_type("blob", || vec![0x1f, 0x8b, 0x08]),
            "application/octet-stream"
        );
        let mut late = vec![b'a'; SNIFF];
        late.push(0xff);
        assert_eq!(
            table.content_type("late", || late),
            "text/plain",
            "only the first 255 count"
        );
        assert_eq!(
            table.content_type("x.png", || unreachable!("the name suffices")),
            "image/png"
        );
    }
}
