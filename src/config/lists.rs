//! `file:` tokens (spec §7.4): where they are looked up, the `X.default`
//! fall-back, the lists compiled into the binary as the last resort, and the
//! two list formats (one URL a line, and RFC822 mirror blocks).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::diag::{Diagnostics, Location, Problem};
use super::files::{self, ConfigDir, Found};

/// What a list is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Mirror URLs of a remap (merging or backend URLs).
    Urls,
    /// `DontCache*` pattern files: one regular expression a line.
    Patterns,
}

/// One entry of a list and the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub text: String,
    pub location: Location,
}

/// Resolves `file:` tokens against the configuration directory and
/// `SupportDir`.
pub struct Resolver<'a> {
    pub config_dir: &'a ConfigDir,
    /// `None` when unset (the embedded defaults, unless given).
    pub support_dir: Option<&'a Path>,
}

impl Resolver<'_> {
    /// Reads every entry a `file:` token names. `at` is where the token was
    /// written, for problems that have no line of their own.
    pub fn expand(
        &self,
        pattern: &str,
        kind: ListKind,
        at: &Location,
        diags: &mut Diagnostics,
    ) -> Vec<ListEntry> {
        if pattern.is_empty() {
            diags.error(at.clone(), Problem::EmptyFileToken);
            return Vec::new();
        }
        let mut entries = self.read(&self.lookup(pattern), kind, diags);
        if kind == ListKind::Patterns {
            if entries.is_empty() {
                self.warn_nothing(pattern, at, diags);
            }
            return entries;
        }
        if entries.is_empty() {
            entries = self.read(&self.lookup(&format!("{pattern}.default")), kind, diags);
        }
        if entries.is_empty() {
            entries = self.fall_back(pattern, at, diags);
        }
        entries
    }

    /// Absolute patterns are globbed as they are; relative ones in the
    /// configuration directory and in `SupportDir`, united, the configuration
    /// directory winning when both have a file of the same name.
    fn lookup(&self, pattern: &str) -> Vec<Found> {
        if pattern.starts_with('/') {
            return files::glob_relative(Path::new("/"), pattern);
        }
        let mut found = self.config_dir.glob(pattern);
        if let Some(support) = self.support_dir {
            let names: HashSet<_> = found
                .iter()
                .map(|f| f.path.file_name().map(ToOwned::to_owned))
                .collect();
            found.extend(
                files::glob_relative(support, pattern)
                    .into_iter()
                    .filter(|f| !names.contains(&f.path.file_name().map(ToOwned::to_owned))),
            );
        }
        found
    }

    fn read(&self, found: &[Found], kind: ListKind, diags: &mut Diagnostics) -> Vec<ListEntry> {
        let mut entries = Vec::new();
        for f in found {
            let text = match &f.content {
                Ok(bytes) => files::decompress(&f.path, bytes.clone()),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            };
            match text {
                Ok(text) => entries.extend(parse(&text, &f.path, kind, diags)),
                Err(source) => diags.warning(
                    Location::File(Arc::clone(&f.path)),
                    Problem::ListUnreadable {
                        path: f.path.to_path_buf(),
                        source,
                    },
                ),
            }
        }
        entries
    }

    /// The last resort when a list matched nothing (acng's SupportDir purged
    /// after a migration, a dangling `.default` link): the lists compiled into
    /// debcache, with a warning naming the token.
    fn fall_back(&self, pattern: &str, at: &Location, diags: &mut Diagnostics) -> Vec<ListEntry> {
        if *self.config_dir == ConfigDir::Embedded {
            self.warn_nothing(pattern, at, diags);
            return Vec::new();
        }
        let mut found = files::glob_embedded(pattern);
        if found.is_empty() {
            found = files::glob_embedded(&format!("{pattern}.default"));
        }
        let entries = self.read(&found, ListKind::Urls, diags);
        let token = format!("file:{pattern}");
        let searched = self.searched();
        if entries.is_empty() {
            diags.warning(at.clone(), Problem::ListMatchedNothing { token, searched });
        } else {
            diags.warning(at.clone(), Problem::ListFallback { token, searched });
        }
        entries
    }

    fn warn_nothing(&self, pattern: &str, at: &Location, diags: &mut Diagnostics) {
        diags.warning(
            at.clone(),
            Problem::ListMatchedNothing {
                token: format!("file:{pattern}"),
                searched: self.searched(),
            },
        );
    }

    fn searched(&self) -> String {
        match self.support_dir {
            Some(s) => format!("{} and {}", self.config_dir.describe(), s.display()),
            None => self.config_dir.describe(),
        }
    }
}

/// Parses one list file.
pub fn parse(text: &[u8], file: &Arc<Path>, kind: ListKind, diags: &mut Diagnostics) -> Vec<ListEntry> {
    let text = String::from_utf8_lossy(text);
    match kind {
        ListKind::Patterns => text
            .lines()
            .enumerate()
            .map(|(i, l)| (i, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .map(|(i, l)| ListEntry {
                text: l.to_string(),
                location: Location::line(file, i + 1),
            })
            .collect(),
        ListKind::Urls => parse_urls(&text, file, diags),
    }
}

/// One URL a line, or RFC822 blocks (`Site:`, `Alias:`, `Aliases:` give
/// hosts, `Archive-http:` or `X-Archive-http:` the path; a blank line ends a
/// block), in any mix.
fn parse_urls(text: &str, file: &Arc<Path>, diags: &mut Diagnostics) -> Vec<ListEntry> {
    let mut out = Vec::new();
    let mut block = Block::default();
    let mut siteless: Option<(usize, String)> = None;
    let mut siteless_count = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let location = Location::line(file, i + 1);
        if line.is_empty() {
            block.finish(&mut out, diags, &mut siteless, &mut siteless_count);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        match field(line) {
            Some((name, value)) => block.field(name, value, location),
            None if line.contains(char::is_whitespace) => {
                diags.error(
                    location,
                    Problem::ListLine {
                        text: line.to_string(),
                    },
                );
            }
            None => out.push(ListEntry {
                text: line.to_string(),
                location,
            }),
        }
    }
    block.finish(&mut out, diags, &mut siteless, &mut siteless_count);
    if let Some((line, first)) = siteless {
        diags.warning(
            Location::line(file, line),
            Problem::ListSitesWithoutPath {
                count: siteless_count,
                first,
            },
        );
    }
    out
}

/// `Name: value` where Name is a field name; `host:8080/x` and `http://x` are
/// URLs, not fields.
fn field(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let is_name = !name.is_empty()
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let looks_like_url = value.starts_with("//") || value.starts_with(|c: char| c.is_ascii_digit());
    (is_name && !looks_like_url).then(|| (name, value.trim()))
}

/// The fields of one RFC822 block seen so far.
#[derive(Default)]
struct Block {
    hosts: Vec<(String, Location)>,
    paths: Vec<(String, Location)>,
}

impl Block {
    fn field(&mut self, name: &str, value: &str, location: Location) {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "site" | "alias" | "aliases" => self
                .hosts
                .extend(super::raw::words(value).map(|h| (h.to_string(), location.clone()))),
            "archive-http" | "x-archive-http" => self.paths.extend(
                value
                    .split_whitespace()
                    .map(|p| (p.to_string(), location.clone())),
            ),
            _ => {}
        }
    }

    fn finish(
        &mut self,
        out: &mut Vec<ListEntry>,
        diags: &mut Diagnostics,
        siteless: &mut Option<(usize, String)>,
        siteless_count: &mut usize,
    ) {
        let block = std::mem::take(self);
        match (block.hosts.is_empty(), block.paths.is_empty()) {
            (true, true) => {}
            (true, false) => diags.error(block.paths[0].1.clone(), Problem::ListPathWithoutSite),
            (false, true) => {
                *siteless_count += 1;
                if siteless.is_none() {
                    let line = match &block.hosts[0].1 {
                        Location::Line { line, .. } => *line,
                        _ => 0,
                    };
                    *siteless = Some((line, block.hosts[0].0.clone()));
                }
            }
            (false, false) => {
                for (host, location) in &block.hosts {
                    for (path, _) in &block.paths {
                        let sep = if path.starts_with('/') { "" } else { "/" };
                        out.push(ListEntry {
                            text: format!("{host}{sep}{path}"),
                            location: location.clone(),
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> (Vec<String>, Vec<String>) {
        let file: Arc<Path> = Arc::from(Path::new("list"));
        let mut diags = Diagnostics::default();
        let got = parse(text.as_bytes(), &file, ListKind::Urls, &mut diags);
        (
            got.into_iter().map(|e| e.text).collect(),
            diags.into_vec().iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn plain_lists_have_one_url_a_line() {
        let (got, diags) = urls("# comment\nhttp://a.example/debian/\n\nb.example/debian\nhost:8080/x/\n");
        assert_eq!(
            got,
            ["http://a.example/debian/", "b.example/debian", "host:8080/x/"]
        );
        assert!(diags.is_empty());
    }

    #[test]
    fn rfc822_blocks_give_every_host_times_every_path() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mirror-lists/rfc822-sample"
        ))
        .unwrap();
        let (got, diags) = urls(&text);
        assert_eq!(
            got,
            [
                "ftp.example-one.org/debian/",
                "ftp2.example-one.org/debian/",
                "mirror.example-two.net/pub/linux/debian/",
                "debian.example-two.net/pub/linux/debian/",
                "deb.example-two.net/pub/linux/debian/",
                "old.example-three.com/mirror/debian/",
            ]
        );
        assert_eq!(
            diags,
            ["list:19: warning: 1 site(s) without Archive-http ignored, first: cdimage-only.example-four.org"]
        );
    }

    #[test]
    fn path_without_site_is_an_error() {
        let (got, diags) = urls("Archive-http: /debian/\nType: leaf\n");
        assert!(got.is_empty());
        assert_eq!(
            diags,
            ["list:1: error: Archive-http without a Site in this block"]
        );
    }

    #[test]
    fn garbage_lines_are_errors_with_their_line() {
        let (got, diags) = urls("http://ok.example/\nthis is garbage\n");
        assert_eq!(got, ["http://ok.example/"]);
        assert_eq!(
            diags,
            ["list:2: error: neither a URL nor a `Field: value` line: `this is garbage`"]
        );
    }

    #[test]
    fn pattern_files_have_one_regex_a_line() {
        let file: Arc<Path> = Arc::from(Path::new("p"));
        let mut diags = Diagnostics::default();
        let got = parse(
            b"  # c\n\\.iso$\n\n  ^/x \n",
            &file,
            ListKind::Patterns,
            &mut diags,
        );
        let texts: Vec<_> = got.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, [r"\.iso$", "^/x"]);
        assert_eq!(got[1].location.to_string(), "p:4");
    }
}
