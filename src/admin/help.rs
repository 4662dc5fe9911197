//! The help page at `/`: what this server is and the apt lines that use it,
//! with this server's address filled in. A real page with status 200, so
//! probes and load balancers see a live server (Decisions table).

use askama::Template;

use crate::config::{Config, Remap};

/// The style sheet of debcache's pages, served at `/style.css`.
pub const STYLE: &str =
    "body{font-family:sans-serif;max-width:52em;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}\
code,pre{background:#f4f4f4;border-radius:3px}pre{padding:.6em .8em;overflow-x:auto}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em}footer{margin-top:2em;color:#777;font-size:.9em}\n";

/// The pages' icon (`/favicon.ico`, SVG: browsers take it whatever the
/// name): a box, green and orange like the report's chart.
pub const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
<rect x=\"1\" y=\"1\" width=\"14\" height=\"9\" rx=\"1.5\" fill=\"#2f855a\"/>\
<rect x=\"1\" y=\"11\" width=\"14\" height=\"4\" rx=\"1.5\" fill=\"#c05621\"/></svg>\n";

/// Renders the page for a server reached as `authority` (`host:port`).
pub fn page(config: &Config, authority: &str) -> Result<String, askama::Error> {
    HelpPage {
        authority,
        aliases: aliases(config),
        intercepted: &config.requests.intercept_domains,
        ca: crate::request::CA_CERTIFICATE,
        report: config.requests.report_page.as_deref(),
        version: env!("CARGO_PKG_VERSION"),
    }
    .render()
}

/// `templates/help.html`; askama escapes every value for HTML.
#[derive(Template)]
#[template(path = "help.html")]
struct HelpPage<'a> {
    authority: &'a str,
    aliases: Vec<String>,
    intercepted: &'a [String],
    ca: &'static str,
    report: Option<&'a str>,
    version: &'static str,
}

/// The `/name` merging URLs of the apt repositories among the remaps: names
/// clients may use as a host in sources.list.
fn aliases(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config
        .remaps
        .iter()
        .filter(|r| is_apt_repository(r))
        .flat_map(|r| {
            r.merges
                .iter()
                .filter(|m| m.alias && m.port == 80)
                .map(|m| m.host.clone())
        })
        .collect();
    names.dedup();
    names
}

/// Domains of apt-based distributions.
const APT_DOMAINS: &[&str] = &["debian.org", "ubuntu.com", "kali.org"];
/// Path segments under which mirrors serve an apt distribution.
const APT_SEGMENTS: &[&str] = &["debian", "debian-security", "ubuntu", "ubuntu-ports", "kali"];

/// Whether a remap is an apt repository, so that a sources.list line for
/// it makes sense. The remap says what it is through its real URLs (its
/// `/name` aliases are made up): an apt repository is mirrored on a host of
/// an apt-based distribution (`security.debian.org`) or under a path named
/// after one (`ftp.nluug.nl/.../kali/`), as every Debian, Ubuntu and Kali
/// mirror list is. acng's other remaps (cygwin, Arch, Fedora, EPEL,
/// Scientific Linux, Gentoo, SourceForge) match neither, and neither does a
/// remap we cannot place: a wrong apt line costs a newcomer more than a
/// missing one.
fn is_apt_repository(remap: &Remap) -> bool {
    let mut hosts_and_paths = remap
        .merges
        .iter()
        .filter(|m| !m.alias)
        .map(|m| (m.host.as_str(), m.prefix.as_str()))
        .chain(remap.backends.iter().map(|b| (b.host.as_str(), b.path.as_str())));
    hosts_and_paths.any(|(host, path)| {
        let host = host.to_ascii_lowercase();
        APT_DOMAINS
            .iter()
            .any(|d| host == *d || host.strip_suffix(d).is_some_and(|h| h.ends_with('.')))
            || path.split('/').any(|seg| APT_SEGMENTS.contains(&seg))
    })
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, ConfigDir};

    #[test]
    fn the_page_names_this_server_in_every_client_line() {
        let config = load(ConfigDir::Embedded, &[]).config.unwrap();
        let html = page(&config, "cache.lan:3142").unwrap();
        assert!(html.contains("Acquire::http::Proxy \"http://cache.lan:3142\";"));
        assert!(html.contains("deb http://cache.lan:3142/deb.debian.org/debian bookworm main"));
        assert!(html.contains("deb http://cache.lan:3142/debian …"));
        assert!(html.contains("deb http://cache.lan:3142/debian-security …"));
        assert!(html.contains("deb http://cache.lan:3142/corp bookworm main"));
        assert!(html.contains("<code>AllowUserPorts: 80 8080</code>"));
    }

    #[test]
    fn the_ca_is_offered_only_when_interception_is_configured() {
        let mut config = load(ConfigDir::Embedded, &[]).config.unwrap();
        assert!(!page(&config, "cache.lan:3142")
            .unwrap()
            .contains("debcache-ca.crt"));
        config.requests.intercept_domains = vec!["download.docker.com".into()];
        let html = page(&config, "cache.lan:3142").unwrap();
        assert!(html.contains(
            "curl -o /usr/local/share/ca-certificates/debcache.crt http://cache.lan:3142/debcache-ca.crt"
        ));
        assert!(html.contains("update-ca-certificates"));
        assert!(html.contains("Acquire::https::Proxy \"http://cache.lan:3142\";"));
    }

    #[test]
    fn the_page_promises_nothing_that_does_not_work_yet() {
        let config = load(ConfigDir::Embedded, &[]).config.unwrap();
        let html = page(&config, "cache.lan:3142").unwrap();
        assert!(html.contains("deb http://HTTPS///download.docker.com/linux/debian"));
        assert!(html.contains("deb http://cache.lan:3142/HTTPS///download.docker.com/linux/debian"));
        assert!(
            html.contains("href=\"/acng-report.html\""),
            "the report page is offered"
        );
        assert!(html.contains("href=\"/metrics\"") && html.contains("href=\"/health\""));
        assert!(!html.contains("Not available yet"));
    }

    #[test]
    fn only_apt_repositories_are_offered_as_sources_list_lines() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/acng-3.7.4");
        let words = [format!("SupportDir={fixture}/support")];
        let loaded = load(
            ConfigDir::Path(format!("{fixture}/etc/apt-cacher-ng").into()),
            &words,
        );
        let config = loaded.config.unwrap();
        assert_eq!(config.remaps.len(), 11);
        assert_eq!(aliases(&config), ["debian", "ubuntu", "kali", "debian-security"]);
        let html = page(&config, "cache.lan:3142").unwrap();
        for alias in ["cygwin", "archlinux", "gentoo"] {
            assert!(!html.contains(&format!("/{alias} …")), "{alias}: {html}");
        }
    }

    #[test]
    fn an_apt_repository_is_known_by_its_hosts_or_paths() {
        let dir = ConfigDir::Embedded;
        let line = |value: &str| vec![format!("Remap-r={value}")];
        let is_apt = |value: &str| {
            let config = load(dir.clone(), &line(value)).config.unwrap();
            let r = config.remaps.iter().find(|r| r.name == "r").unwrap().clone();
            is_apt_repository(&r)
        };
        assert!(is_apt("/r ; http://security.debian.org/"));
        assert!(is_apt("/r mirror.example/pub/ubuntu/"));
        assert!(is_apt("/r ; http://mirror.example/kali/"));
        assert!(!is_apt("/debian ; http://mirror.example/cygwin/"));
        assert!(!is_apt("/r ; http://notdebian.org/x/"));
        assert!(!is_apt("/r ; http://mirror.example/debian-cd/"));
    }

    #[test]
    fn the_authority_is_escaped() {
        let config = load(ConfigDir::Embedded, &[]).config.unwrap();
        assert!(!page(&config, "<script>").unwrap().contains("<script>"));
    }
}
