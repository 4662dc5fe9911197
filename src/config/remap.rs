//! `Remap-NAME: merging URLs ; backend URLs ; flags` (spec §5.1, §5.2): the
//! lines of one name merge, `file:` tokens expand to their lists, every URL is
//! parsed and duplicates dropped. The lookup table built from these lives in
//! `crate::remap`.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::diag::{Diagnostics, Location, Problem};
use super::lists::{ListEntry, ListKind, Resolver};
use super::store::RemapLine;
use crate::url::{HttpUrl, Scheme};

/// A cache repository and the URLs that lead to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remap {
    /// The top-level cache directory; case preserved.
    pub name: String,
    /// Requests under these prefixes are cached in this repository.
    pub merges: Vec<MergeUrl>,
    /// Where downloads go, in failover order; empty means "the URL the
    /// client asked for".
    pub backends: Vec<HttpUrl>,
    pub flags: RemapFlags,
    /// Where `merges` came from, token by token.
    pub merge_sources: Vec<Source>,
    /// Where `backends` came from, token by token.
    pub backend_sources: Vec<Source>,
    /// The first line that mentions this repository.
    pub location: Location,
    /// `<name>.hooks` in the first configuration directory, when there is one.
    pub hooks: Option<super::Hooks>,
}

/// One token of a `Remap-` line and what it gave: a URL, or a `file:` list
/// and the files it matched. `--check` and `--print-config` show these, so
/// 500 mirrors read as one list, not 500 lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// A URL as read (credentials masked), or the `file:` token as written.
    pub text: String,
    /// For a `file:` token: each file read and the URLs it gave, in order;
    /// empty for a URL.
    pub files: Vec<(Arc<Path>, usize)>,
}

impl Source {
    pub fn is_list(&self) -> bool {
        self.text.starts_with("file:")
    }

    /// The URLs this token gave, before duplicates across tokens were
    /// dropped.
    pub fn urls(&self) -> usize {
        if self.is_list() {
            self.files.iter().map(|(_, n)| n).sum()
        } else {
            1
        }
    }
}

/// `file:deb_mirror*.gz (505 URLs)`, or the URL.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if self.is_list() {
            write!(f, " ({})", super::print::count(self.urls(), "URL"))?;
        }
        Ok(())
    }
}

/// A merging URL: the `host:port` key and the path prefix below it. The
/// scheme only chose the default port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MergeUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Starts and ends with `/`.
    pub prefix: String,
    /// Written as `/name`: a name clients use in place of a host
    /// (`http://cache:3142/debian/...`), not a real mirror.
    pub alias: bool,
}

impl fmt::Display for MergeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authority = crate::url::authority(self.scheme, &self.host, self.port);
        write!(f, "{}://{authority}{}", self.scheme.as_str(), self.prefix)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemapFlags {
    /// `keyfile=SUFFIX`: a file whose failure marks a backend as broken.
    pub keyfiles: Vec<String>,
    /// `deltasrc=URL`: where `.debdelta` files come from (mirroring only).
    pub deltasrc: Option<HttpUrl>,
    pub proxy: RemapProxy,
}

/// The `proxy=` flag. An empty `proxy=` means "no proxy" as the manual says
/// (acng 3.7.4 falls back to the global proxy instead: spec §13 #9, fixed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RemapProxy {
    #[default]
    Global,
    Direct,
    Via(HttpUrl),
}

impl RemapFlags {
    /// One line per flag, as `--print-config` shows them.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.keyfiles.iter().map(|k| format!("keyfile={k}")).collect();
        if let Some(d) = &self.deltasrc {
            out.push(format!("deltasrc={}", d.masked()));
        }
        match &self.proxy {
            RemapProxy::Global => {}
            RemapProxy::Direct => out.push("proxy=".into()),
            RemapProxy::Via(p) => out.push(format!("proxy={}", p.masked())),
        }
        out
    }
}

/// Builds the repositories from their lines, in the order they first appear.
pub fn build(lines: &[RemapLine], resolver: &Resolver<'_>, diags: &mut Diagnostics) -> Vec<Remap> {
    let mut remaps: Vec<Remap> = Vec::new();
    for line in lines {
        if line.value.trim().is_empty() {
            diags.error(
                line.location.clone(),
                Problem::EmptyRemap {
                    name: line.name.clone(),
                },
            );
            continue;
        }
        let index = match remaps.iter().position(|r| r.name == line.name) {
            Some(i) => i,
            None => {
                remaps.push(Remap {
                    name: line.name.clone(),
                    merges: Vec::new(),
                    backends: Vec::new(),
                    flags: RemapFlags::default(),
                    merge_sources: Vec::new(),
                    backend_sources: Vec::new(),
                    location: line.location.clone(),
                    hooks: None,
                });
                remaps.len() - 1
            }
        };
        add_line(&mut remaps[index], line, resolver, diags);
    }
    for remap in &mut remaps {
        remap.hooks = super::hooks::read(resolver.config_dir, &remap.name, diags);
        dedup(&mut remap.merges);
        dedup(&mut remap.backends);
        if remap.merges.is_empty() {
            diags.warning(
                remap.location.clone(),
                Problem::EmptyRemap {
                    name: remap.name.clone(),
                },
            );
        }
    }
    remaps
}

fn dedup<T: Clone + Eq + std::hash::Hash>(items: &mut Vec<T>) {
    let mut seen = HashSet::new();
    items.retain(|i| seen.insert(i.clone()));
}

fn add_line(remap: &mut Remap, line: &RemapLine, resolver: &Resolver<'_>, diags: &mut Diagnostics) {
    // A `#` token ends the line (command-line words keep their `#`).
    let value = line.value.split(" #").next().unwrap_or_default();
    for (section, text) in value.split(';').enumerate() {
        for token in text.split_whitespace() {
            match section {
                0 => {
                    let entries = expand(token, &line.location, resolver, diags);
                    let mut source = Source::of(token, &entries);
                    for entry in entries {
                        if let Some(url) = parse_url(&entry.text, "Remap", &entry.location, diags) {
                            let merge = MergeUrl {
                                scheme: url.scheme,
                                host: url.host,
                                port: url.port,
                                prefix: with_trailing_slash(url.path),
                                alias: entry.text.starts_with('/'),
                            };
                            // An alias reads best as written: `/debian`.
                            source.read_url(&entry, || match merge.alias {
                                true => format!("/{}", merge.host),
                                false => merge.to_string(),
                            });
                            remap.merges.push(merge);
                        }
                    }
                    remap.merge_sources.push(source);
                }
                1 => {
                    let entries = expand(token, &line.location, resolver, diags);
                    let mut source = Source::of(token, &entries);
                    for entry in entries {
                        if let Some(mut url) = parse_url(&entry.text, "Remap", &entry.location, diags) {
                            url.path = with_trailing_slash(url.path);
                            source.read_url(&entry, || url.masked());
                            remap.backends.push(url);
                        }
                    }
                    remap.backend_sources.push(source);
                }
                _ => add_flag(&mut remap.flags, token, &line.location, diags),
            }
        }
    }
}

impl Source {
    fn of(token: &str, entries: &[ListEntry]) -> Source {
        let mut files: Vec<(Arc<Path>, usize)> = Vec::new();
        if token.starts_with("file:") {
            for entry in entries {
                if let Location::Line { file, .. } = &entry.location {
                    if !files.iter().any(|(f, _)| f == file) {
                        files.push((Arc::clone(file), 0));
                    }
                }
            }
        }
        Source {
            text: token.to_string(),
            files,
        }
    }

    /// Counts a URL that parsed, or, for a plain token, takes its
    /// normalised form.
    fn read_url(&mut self, entry: &ListEntry, normalised: impl FnOnce() -> String) {
        if !self.is_list() {
            self.text = normalised();
            return;
        }
        if let Location::Line { file, .. } = &entry.location {
            if let Some((_, n)) = self.files.iter_mut().find(|(f, _)| f == file) {
                *n += 1;
            }
        }
    }
}

fn expand(token: &str, at: &Location, resolver: &Resolver<'_>, diags: &mut Diagnostics) -> Vec<ListEntry> {
    match token.strip_prefix("file:") {
        Some(pattern) => resolver.expand(pattern, ListKind::Urls, at, diags),
        None => vec![ListEntry {
            text: token.to_string(),
            location: at.clone(),
        }],
    }
}

/// `text` as a URL, or an error about `key` at `at`.
fn parse_url(text: &str, key: &str, at: &Location, diags: &mut Diagnostics) -> Option<HttpUrl> {
    HttpUrl::parse(text)
        .map_err(|source| {
            let value = text.to_string();
            let key = key.to_string();
            diags.error(at.clone(), Problem::BadUrl { key, value, source });
        })
        .ok()
}

fn with_trailing_slash(mut path: String) -> String {
    if !path.ends_with('/') {
        path.push('/');
    }
    path
}

fn add_flag(flags: &mut RemapFlags, token: &str, at: &Location, diags: &mut Diagnostics) {
    let (name, value) = token.split_once('=').unwrap_or((token, ""));
    let url = |diags: &mut Diagnostics| parse_url(value, &format!("Remap flag {name}"), at, diags);
    match name {
        "keyfile" if !value.is_empty() => flags.keyfiles.push(value.to_string()),
        "deltasrc" => flags.deltasrc = url(diags),
        "proxy" if value.is_empty() => flags.proxy = RemapProxy::Direct,
        "proxy" => flags.proxy = url(diags).map_or(RemapProxy::Global, RemapProxy::Via),
        _ => diags.warning(
            at.clone(),
            Problem::BadRemapFlag {
                flag: token.to_string(),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::files::ConfigDir;
    use std::path::Path;
    use std::sync::Arc;

    fn build_lines(lines: &[(&str, &str)]) -> (Vec<Remap>, Vec<String>) {
        let file: Arc<Path> = Arc::from(Path::new("acng.conf"));
        let lines: Vec<RemapLine> = lines
            .iter()
            .enumerate()
            .map(|(i, (n, v))| RemapLine {
                name: n.to_string(),
                value: v.to_string(),
                location: Location::line(&file, i + 1),
            })
            .collect();
        let dir = ConfigDir::Embedded;
        let resolver = Resolver {
            config_dir: &dir,
            support_dir: None,
        };
        let mut diags = Diagnostics::default();
        let remaps = build(&lines, &resolver, &mut diags);
        (remaps, diags.into_vec().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn sections_are_merges_backends_and_flags() {
        let (remaps, diags) = build_lines(&[(
            "secdeb",
            "security.debian.org /debian-security deb.debian.org/debian-security ; https://deb.debian.org/debian-security ; keyfile=InRelease proxy=",
        )]);
        assert!(diags.is_empty(), "{diags:?}");
        let r = &remaps[0];
        let merges: Vec<String> = r.merges.iter().map(ToString::to_string).collect();
        assert_eq!(
            merges,
            [
                "http://security.debian.org/",
                "http://debian-security/",
                "http://deb.debian.org/debian-security/"
            ]
        );
        assert_eq!(
            r.backends[0].to_string(),
            "https://deb.debian.org/debian-security/"
        );
        assert_eq!(r.flags.keyfiles, ["InRelease"]);
        assert_eq!(r.flags.proxy, RemapProxy::Direct);
    }

    #[test]
    fn lines_of_one_name_merge_and_duplicates_go() {
        let (remaps, _) = build_lines(&[
            ("a", "x.example/d/ ; y.example/d"),
            ("b", "/b"),
            ("a", "x.example/d ; z.example/d/"),
        ]);
        assert_eq!(remaps.len(), 2);
        assert_eq!(remaps[0].merges.len(), 1);
        assert_eq!(remaps[0].backends.len(), 2);
        assert_eq!(remaps[0].backends[1].path, "/d/");
    }

    #[test]
    fn port_is_part_of_the_merge_key() {
        let (remaps, _) = build_lines(&[("a", "https://h/x http://h:8080/x h/x")]);
        let keys: Vec<_> = remaps[0].merges.iter().map(|m| (m.port, m.to_string())).collect();
        assert_eq!(
            keys,
            [
                (443, "https://h/x/".to_string()),
                (8080, "http://h:8080/x/".to_string()),
                (80, "http://h/x/".to_string())
            ]
        );
    }

    #[test]
    fn file_tokens_read_the_lists() {
        let (remaps, diags) =
            build_lines(&[("debrep", "file:deb_mirror*.gz /debian ; file:backends_debian")]);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(remaps[0].merges.len(), 506);
        assert_eq!(remaps[0].backends[0].to_string(), "http://ftp.debian.org/debian/");
    }

    #[test]
    fn bad_urls_and_flags_are_reported_on_their_line() {
        let (remaps, diags) = build_lines(&[("a", "/a ftp://x/ ; http://:1/ ; frob=1"), ("b", "")]);
        assert_eq!(remaps[0].merges.len(), 1);
        assert_eq!(diags.len(), 4, "{diags:?}");
        assert!(
            diags[0].starts_with("acng.conf:1: error: Remap: `ftp://x/`"),
            "{diags:?}"
        );
        assert!(
            diags[2].starts_with("acng.conf:1: warning: unknown remap flag `frob=1`"),
            "{diags:?}"
        );
        assert!(
            diags[3].starts_with("acng.conf:2: error: Remap-b has no URLs"),
            "{diags:?}"
        );
    }
}
