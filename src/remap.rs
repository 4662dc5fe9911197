//! Which cache repository a URL belongs to and where its bytes come from
//! (spec §5.1): the longest merging prefix registered for the URL's exact
//! `host:port`, the request path strictly longer than it. URLs matching no
//! remap are cached under their host name, port and scheme dropped (§6.1).
//! Pure and immutable, built once from the configuration.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Remap, RemapFlags};
use crate::url::HttpUrl;

/// A repository with its backends.
#[derive(Debug)]
struct Repo {
    name: String,
    /// Failover order; empty means "fetch the URL the client asked for".
    backends: Vec<HttpUrl>,
    /// Shared by every resolution.
    flags: Arc<RemapFlags>,
}

/// Where one request is cached and fetched from.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The top-level cache directory: a repository name or a host name.
    pub repo: String,
    /// The path below `repo`, without a leading slash.
    pub rel_path: String,
    /// Full upstream URLs for this file, in failover order.
    pub backends: Vec<HttpUrl>,
    /// The repository's flags (default ones for unmatched hosts).
    pub flags: Arc<RemapFlags>,
    /// A remap with backends matched: ForceManaged lets it download.
    pub managed: bool,
    /// `repo` is a `Remap-` repository (its hooks run around downloads),
    /// not a host's own directory.
    pub remapped: bool,
}

impl Resolved {
    /// The `Remap-` repository whose hooks run around a download of the
    /// file; `None` for a host's own directory.
    pub fn hooked_repo(&self) -> Option<&str> {
        self.remapped.then_some(self.repo.as_str())
    }
}

#[derive(Debug)]
struct Prefix {
    port: u16,
    path: String,
    repo: usize,
    alias: bool,
}

/// The lookup table of every `Remap-*` directive.
#[derive(Debug, Default)]
pub struct RemapTable {
    /// host → prefixes (of every port), longest first.
    hosts: HashMap<String, Vec<Prefix>>,
    repos: Vec<Repo>,
    unmatched_flags: Arc<RemapFlags>,
}

impl RemapTable {
    pub fn new(remaps: &[Remap]) -> RemapTable {
        let mut table = RemapTable::default();
        for (index, r) in remaps.iter().enumerate() {
            table.repos.push(Repo {
                name: r.name.clone(),
                backends: r.backends.clone(),
                flags: Arc::new(r.flags.clone()),
            });
            for m in &r.merges {
                table.hosts.entry(m.host.clone()).or_default().push(Prefix {
                    port: m.port,
                    path: m.prefix.clone(),
                    repo: index,
                    alias: m.alias,
                });
            }
        }
        for prefixes in table.hosts.values_mut() {
            // Longest first; among equals the first configured wins.
            prefixes.sort_by_key(|p| std::cmp::Reverse(p.path.len()));
        }
        table
    }

    /// True when `host` at `port` was written as a `/name` merging URL, the
    /// path-style alias of spec §2.3 item 3, or is a repository's own name
    /// (spec §13 #12: `/debrep/...` then means that repository).
    pub fn is_alias(&self, host: &str, port: u16) -> bool {
        let mut prefixes = self.prefixes(host, port).peekable();
        if prefixes.peek().is_some() {
            return prefixes.any(|p| p.alias);
        }
        port == 80 && self.repo_named(host).is_some()
    }

    /// The merging URLs' prefixes at `host` and `port`, longest first.
    fn prefixes<'a>(&'a self, host: &str, port: u16) -> impl Iterator<Item = &'a Prefix> {
        self.hosts
            .get(host)
            .into_iter()
            .flatten()
            .filter(move |p| p.port == port)
    }

    fn repo_named(&self, name: &str) -> Option<usize> {
        self.repos.iter().position(|r| r.name == name)
    }

    /// Resolves a requested URL.
    pub fn resolve(&self, url: &HttpUrl) -> Resolved {
        let matched = self
            .prefixes(&url.host, url.port)
            .find(|p| url.path.len() > p.path.len() && url.path.starts_with(&p.path))
            .map(|p| (p.repo, &url.path[p.path.len()..]));
        let matched = matched.or_else(|| {
            // A repository's own name used as a path-style alias.
            let index = self.repo_named(&url.host).filter(|_| url.port == 80)?;
            Some((index, url.path.trim_start_matches('/'))).filter(|(_, rest)| !rest.is_empty())
        });
        match matched {
            Some((index, rest)) => self.in_repo(index, url, rest),
            None => Resolved {
                repo: url.host.clone(),
                rel_path: url.path.trim_start_matches('/').to_string(),
                backends: vec![url.clone()],
                flags: Arc::clone(&self.unmatched_flags),
                managed: false,
                remapped: false,
            },
        }
    }

    /// Where a file already in the cache, `repo/rel`, comes from again
    /// (maintenance refreshing it): its repository's backends; for a
    /// repository without backends or a host directory, the URL its `.head`
    /// says it came from (`original`), else `http://repo/rel`.
    pub fn for_cached(&self, repo: &str, rel: &str, original: Option<&HttpUrl>) -> Option<Resolved> {
        let url = || match original {
            Some(url) => Some(url.clone()),
            None => HttpUrl::parse(&format!("http://{repo}/{rel}")).ok(),
        };
        let Some(index) = self.repo_named(repo) else {
            return Some(Resolved {
                repo: repo.to_string(),
                rel_path: rel.to_string(),
                backends: vec![url()?],
                flags: Arc::clone(&self.unmatched_flags),
                managed: false,
                remapped: false,
            });
        };
        let r = &self.repos[index];
        let backends = if r.backends.is_empty() {
            vec![url()?]
        } else {
            r.backends.iter().map(|b| b.join_path(rel)).collect()
        };
        Some(Resolved {
            repo: r.name.clone(),
            rel_path: rel.to_string(),
            backends,
            flags: Arc::clone(&r.flags),
            managed: !r.backends.is_empty(),
            remapped: true,
        })
    }

    fn in_repo(&self, index: usize, url: &HttpUrl, rest: &str) -> Resolved {
        let repo = &self.repos[index];
        let backends = if repo.backends.is_empty() {
            vec![url.clone()]
        } else {
            repo.backends.iter().map(|b| b.join_path(rest)).collect()
        };
        Resolved {
            repo: repo.name.clone(),
            rel_path: rest.to_string(),
            backends,
            flags: Arc::clone(&repo.flags),
            managed: !repo.backends.is_empty(),
            remapped: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, ConfigDir};
    use std::path::Path;

    fn fixture_table() -> RemapTable {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/acng-3.7.4");
        let support = format!("SupportDir={}", root.join("support").display());
        let loaded = load(ConfigDir::Path(root.join("etc/apt-cacher-ng")), &[support]);
        RemapTable::new(&loaded.config.unwrap().remaps)
    }

    fn resolve(table: &RemapTable, url: &str) -> (String, String, String) {
        let r = table.resolve(&HttpUrl::parse(url).unwrap());
        (r.repo, r.rel_path, r.backends[0].to_string())
    }

    fn r(repo: &str, rel: &str, backend: &str) -> (String, String, String) {
        (repo.into(), rel.into(), backend.into())
    }

    #[test]
    fn a_cached_file_is_fetched_again_from_its_repositorys_backends_or_its_source() {
        let t = fixture_table();
        let r = t.for_cached("debrep", "dists/bookworm/InRelease", None).unwrap();
        assert_eq!(
            r.backends[0].to_string(),
            "http://ftp.debian.org/debian/dists/bookworm/InRelease"
        );
        let source = HttpUrl::parse("https://mirror.example:8443/x/dists/s/InRelease").unwrap();
        let r = t
            .for_cached("mirror.example", "x/dists/s/InRelease", Some(&source))
            .unwrap();
        assert_eq!(r.backends, vec![source]);
        let r = t
            .for_cached("mirror.example", "x/dists/s/InRelease", None)
            .unwrap();
        assert_eq!(
            r.backends[0].to_string(),
            "http://mirror.example/x/dists/s/InRelease"
        );
    }

    #[test]
    fn debian_and_ubuntu_mirrors_merge_into_their_repositories() {
        let t = fixture_table();
        let cases = [
            (
                "http://deb.debian.org/debian/dists/bookworm/InRelease",
                r(
                    "debrep",
                    "dists/bookworm/InRelease",
                    "http://ftp.debian.org/debian/dists/bookworm/InRelease",
                ),
            ),
            (
                "http://ftp.de.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
                r(
                    "debrep",
                    "pool/main/h/hello/hello_2.10-3_amd64.deb",
                    "http://ftp.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
                ),
            ),
            (
                "http://ftp.us.debian.org/debian/dists/trixie/main/binary-amd64/Packages.xz",
                r(
                    "debrep",
                    "dists/trixie/main/binary-amd64/Packages.xz",
                    "http://ftp.debian.org/debian/dists/trixie/main/binary-amd64/Packages.xz",
                ),
            ),
            (
                "http://archive.ubuntu.com/ubuntu/dists/noble/InRelease",
                r(
                    "uburep",
                    "dists/noble/InRelease",
                    "http://archive.ubuntu.com/ubuntu/dists/noble/InRelease",
                ),
            ),
            (
                "http://de.archive.ubuntu.com/ubuntu/pool/main/b/bash/bash_5.2.21-2ubuntu4_amd64.deb",
                r(
                    "uburep",
                    "pool/main/b/bash/bash_5.2.21-2ubuntu4_amd64.deb",
                    "http://archive.ubuntu.com/ubuntu/pool/main/b/bash/bash_5.2.21-2ubuntu4_amd64.deb",
                ),
            ),
            (
                "http://us.archive.ubuntu.com/ubuntu/dists/noble-security/InRelease",
                r(
                    "uburep",
                    "dists/noble-security/InRelease",
                    "http://archive.ubuntu.com/ubuntu/dists/noble-security/InRelease",
                ),
            ),
            (
                "http://debian/dists/bookworm/Release",
                r(
                    "debrep",
                    "dists/bookworm/Release",
                    "http://ftp.debian.org/debian/dists/bookworm/Release",
                ),
            ),
            (
                "http://ubuntu/pool/x.deb",
                r(
                    "uburep",
                    "pool/x.deb",
                    "http://archive.ubuntu.com/ubuntu/pool/x.deb",
                ),
            ),
        ];
        for (url, want) in cases {
            assert_eq!(resolve(&t, url), want, "{url}");
        }
    }

    #[test]
    fn security_prefers_the_longest_prefix() {
        let t = fixture_table();
        assert_eq!(
            resolve(
                &t,
                "http://security.debian.org/debian-security/dists/bookworm-security/InRelease"
            ),
            r(
                "secdeb",
                "dists/bookworm-security/InRelease",
                "http://deb.debian.org/debian-security/dists/bookworm-security/InRelease"
            )
        );
        assert_eq!(
            resolve(&t, "http://security.debian.org/dists/buster/updates/InRelease"),
            r(
                "secdeb",
                "dists/buster/updates/InRelease",
                "http://deb.debian.org/debian-security/dists/buster/updates/InRelease"
            )
        );
        assert_eq!(
            resolve(&t, "http://deb.debian.org/debian-security/pool/updates/x.deb"),
            r(
                "secdeb",
                "pool/updates/x.deb",
                "http://deb.debian.org/debian-security/pool/updates/x.deb"
            )
        );
        let backends: Vec<String> = t
            .resolve(&HttpUrl::parse("http://debian-security/pool/a.deb").unwrap())
            .backends
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            backends,
            [
                "http://deb.debian.org/debian-security/pool/a.deb",
                "http://security.debian.org/pool/a.deb",
                "http://cdn-fastly.deb.debian.org/debian-security/pool/a.deb"
            ]
        );
    }

    /// acng's layout (spec §6.1): `host:8080` and `host` share a cache
    /// path; the request upstream still goes to the port and scheme asked.
    /// An HTTPS/// request (port 443) does not match a remap registered for
    /// `http://host/path` (port 80), as in acng (spec §5.1): it is cached
    /// under the host name (ARCHITECTURE.md, "https identity").
    #[test]
    fn port_and_scheme_are_dropped_from_the_cache_path_but_kept_upstream() {
        let t = fixture_table();
        let (repo, rel, backend) = resolve(&t, "https://deb.debian.org/debian/dists/bookworm/InRelease");
        assert_eq!(
            (repo.as_str(), rel.as_str()),
            ("deb.debian.org", "debian/dists/bookworm/InRelease")
        );
        assert_eq!(backend, "https://deb.debian.org/debian/dists/bookworm/InRelease");
        let (repo, rel, backend) = resolve(&t, "http://deb.debian.org:8080/debian/pool/x.deb");
        assert_eq!(
            (repo.as_str(), rel.as_str()),
            ("deb.debian.org", "debian/pool/x.deb")
        );
        assert_eq!(backend, "http://deb.debian.org:8080/debian/pool/x.deb");
    }

    #[test]
    fn unmatched_hosts_cache_under_their_name_and_fetch_directly() {
        let t = fixture_table();
        let r = t.resolve(&HttpUrl::parse("http://apt.example.com:8080/repo/pool/x.deb").unwrap());
        assert_eq!(
            (r.repo.as_str(), r.rel_path.as_str()),
            ("apt.example.com", "repo/pool/x.deb")
        );
        assert_eq!(
            r.backends[0].to_string(),
            "http://apt.example.com:8080/repo/pool/x.deb"
        );
        assert!(!r.managed);
    }

    #[test]
    fn the_path_must_be_longer_than_the_prefix() {
        let t = fixture_table();
        assert_eq!(resolve(&t, "http://deb.debian.org/debian/").0, "deb.debian.org");
    }

    #[test]
    fn aliases_and_repository_names_are_recognised() {
        let t = fixture_table();
        assert!(t.is_alias("debian", 80));
        assert!(t.is_alias("debian-security", 80));
        assert!(!t.is_alias("deb.debian.org", 80));
        assert!(t.is_alias("debrep", 80));
        assert!(!t.is_alias("debrep", 8080));
        assert_eq!(
            resolve(&t, "http://debrep/dists/bookworm/InRelease"),
            r(
                "debrep",
                "dists/bookworm/InRelease",
                "http://ftp.debian.org/debian/dists/bookworm/InRelease"
            )
        );
    }

    #[test]
    fn remaps_without_backends_fetch_what_was_asked() {
        let t = RemapTable::new(
            &load(ConfigDir::Embedded, &["Remap-local=/local ; ".to_string()])
                .config
                .unwrap()
                .remaps,
        );
        let r = t.resolve(&HttpUrl::parse("http://local/pool/a.deb").unwrap());
        assert_eq!(
            (r.repo.as_str(), r.rel_path.as_str(), r.managed),
            ("local", "pool/a.deb", false)
        );
        assert_eq!(r.backends[0].to_string(), "http://local/pool/a.deb");
    }
}
