//! `maint` (spec §11.1): asks the running daemon for a report-page action,
//! by default the expiration, the way acngtool does for Debian's cron job.
//!
//! - **What:** `/<ReportPage>` + `$ACNGREQ` (a `?` put before it when it
//!   has none), or `?doExpire=Start+Expiration&abortOnErrors=aOe`.
//! - **Where:** the unix socket `SocketPath` when it is a socket this user
//!   may write to, with the identification the daemon wants first; then
//!   TCP to each `BindAddress` (an unspecified one as loopback; its port or
//!   `Port`), or 127.0.0.1 on `Port`. Never through a proxy; 30 s timeouts.
//!   The next way is tried only when the last one gave no answer at all: a
//!   daemon that answered, whatever it said, is not asked twice (acngtool
//!   asks again over TCP, and runs a task twice).
//! - **Credentials:** `AdminAuth`, as Basic authentication. Over the
//!   socket only, unless `ACNG_INSECURE` is set (to anything but empty):
//!   with them set, a configured socket that is not accessible, or no
//!   `SocketPath`, is an error and nothing is sent.
//! - **Output:** acng's control lines on stderr (`view`); our own
//!   messages, prefixed `debcache maint:`, on stderr too.
//! - **Exit:** 0 when the daemon answered 200 and the page came to its end,
//!   whatever errors the task found (they are on stderr); 1 otherwise; 255
//!   when `ReportPage` is empty (acngtool's codes).

mod chunked;
mod client;
mod control;
mod view;

use std::ffi::OsString;
use std::fmt;
use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::cli::{exit, stderr_line};
use crate::config::{BindHost, Config, Listen};
use client::{Answer, Endpoint, ExchangeError, Request};
use view::View;

/// acngtool's network timeout for `maint`.
const TIMEOUT: Duration = Duration::from_secs(30);
/// acngtool's default action: the expiration, stopping on errors.
const DEFAULT_QUERY: &str = "?doExpire=Start+Expiration&abortOnErrors=aOe";

/// Runs it; the exit code.
pub fn run(config: &Config, verbose: bool) -> u8 {
    let env = Env {
        request: std::env::var_os("ACNGREQ"),
        insecure: std::env::var_os("ACNG_INSECURE").is_some_and(|v| !v.is_empty()),
    };
    let plan = match plan(config, &env, accessible) {
        Ok(plan) => plan,
        Err(refused) => {
            say(format_args!("{refused}"));
            return refused.exit_code();
        }
    };
    let mut view = View::new(verbose, std::io::stderr().is_terminal());
    let asked = ask(&plan, &mut view);
    view.finish();
    match asked {
        Ok((_, Answer { status: 200, .. })) => exit::OK,
        Ok((endpoint, answer)) => {
            let hint = match answer.status {
                401 => " (is AdminAuth here the daemon's?)",
                404 => " (is ReportPage here the daemon's?)",
                _ => "",
            };
            let reason: String = answer.reason.chars().take(200).collect();
            say(format_args!(
                "{endpoint} answered {} {reason} to {}{hint}",
                answer.status, plan.target
            ));
            exit::MAINT_FAILED
        }
        Err(Failed::Cut(endpoint, e)) => {
            say(format_args!("{endpoint}: {}", crate::error::Chain(&e)));
            exit::MAINT_FAILED
        }
        Err(Failed::Unanswered(tried)) => {
            for (endpoint, e) in &tried {
                say(format_args!("{endpoint}: {}", crate::error::Chain(e)));
            }
            say(format_args!("could not reach the daemon; is it running?"));
            exit::MAINT_FAILED
        }
    }
}

fn say(what: fmt::Arguments<'_>) {
    stderr_line(format_args!("debcache maint: {what}"));
}

/// What `maint` reads from its environment.
#[derive(Debug, Default)]
struct Env {
    /// `ACNGREQ`: the query to send instead of the expiration's.
    request: Option<OsString>,
    /// `ACNG_INSECURE` is set: credentials may go over TCP.
    insecure: bool,
}

/// The request and the ways to the daemon, in the order they are tried.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    target: String,
    /// The base64 of `AdminAuth`.
    basic: Option<String>,
    ways: Vec<Endpoint>,
}

/// Why nothing is asked.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    NoReportPage,
    /// Credentials would go over TCP: the socket is not accessible.
    SocketNotAccessible(PathBuf),
    /// Credentials would go over TCP: there is no socket.
    NoSocket,
    /// No socket to use and no TCP port.
    NoWay,
}

impl Refused {
    fn exit_code(&self) -> u8 {
        match self {
            Refused::NoReportPage => exit::NO_REPORT_PAGE,
            _ => exit::MAINT_FAILED,
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::NoReportPage => {
                f.write_str("ReportPage is not set, so there is no page to ask; aborting")
            }
            Refused::SocketNotAccessible(path) => write!(
                f,
                "AdminAuth is set and its credentials go over the unix socket only, but {} is not \
                 accessible (is the daemon running? ACNG_INSECURE=1 sends them over TCP)",
                path.display()
            ),
            Refused::NoSocket => f.write_str(
                "AdminAuth is set and its credentials go over the unix socket only, but SocketPath \
                 is not set (set it to a safe place, or ACNG_INSECURE=1 to send them over TCP)",
            ),
            Refused::NoWay => {
                f.write_str("no unix socket to use and no TCP port (Port is 0) to reach the daemon")
            }
        }
    }
}

/// Decides what to ask and where (the module's table); `accessible`
/// says whether a socket path may be used.
fn plan(config: &Config, env: &Env, accessible: impl Fn(&Path) -> bool) -> Result<Plan, Refused> {
    let page = config
        .requests
        .report_page
        .as_deref()
        .ok_or(Refused::NoReportPage)?;
    let query = env
        .request
        .as_deref()
        .map_or(DEFAULT_QUERY.as_bytes(), |q| q.as_bytes());
    let target = format!("/{}{}", encode(page.as_bytes()), query_part(query));
    let auth = config.requests.admin_auth.as_ref();
    let socket = config.listen.socket_path.as_deref();
    let usable = socket.filter(|p| accessible(p));
    if auth.is_some() && !env.insecure {
        match (socket, usable) {
            (None, _) => return Err(Refused::NoSocket),
            (Some(path), None) => return Err(Refused::SocketNotAccessible(path.to_path_buf())),
            (Some(_), Some(_)) => {}
        }
    }
    let mut ways: Vec<Endpoint> = usable
        .map(|p| Endpoint::Socket(p.to_path_buf()))
        .into_iter()
        .collect();
    if auth.is_none() || env.insecure {
        ways.extend(tcp_ways(&config.listen));
    }
    if ways.is_empty() {
        return Err(Refused::NoWay);
    }
    let basic =
        auth.map(|a| base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.user, a.password)));
    Ok(Plan { target, basic, ways })
}

/// A query as given, with its `?`.
fn query_part(query: &[u8]) -> String {
    let encoded = encode(query);
    match encoded.as_str() {
        "" => String::new(),
        q if q.starts_with('?') => encoded,
        q => format!("?{q}"),
    }
}

/// Percent-encodes what may not stand in a request target (spaces,
/// controls, bytes above ASCII); the rest stays as written.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The TCP addresses the daemon listens on, as a client reaches them.
fn tcp_ways(listen: &Listen) -> Vec<Endpoint> {
    if listen.bind_addresses.is_empty() {
        return (listen.port != 0)
            .then(|| Endpoint::Tcp(Ipv4Addr::LOCALHOST.to_string(), listen.port))
            .into_iter()
            .collect();
    }
    let mut ways = Vec::new();
    for bind in &listen.bind_addresses {
        let port = bind.port.unwrap_or(listen.port);
        if port == 0 {
            continue;
        }
        let host = match &bind.host {
            BindHost::Ip(IpAddr::V4(ip)) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            BindHost::Ip(IpAddr::V6(ip)) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.to_string(),
            BindHost::Ip(ip) => ip.to_string(),
            BindHost::Name(name) => name.clone(),
        };
        let way = Endpoint::Tcp(host, port);
        if !ways.contains(&way) {
            ways.push(way);
        }
    }
    ways
}

/// acngtool's test: a socket this user may write to.
fn accessible(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
        && rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_ok()
}

/// How asking ended without an answer to its end.
enum Failed {
    /// Nothing answered on any way: each way and what happened.
    Unanswered(Vec<(Endpoint, ExchangeError)>),
    /// The answer broke off.
    Cut(Endpoint, ExchangeError),
}

/// Asks each way in turn until one answers.
fn ask(plan: &Plan, view: &mut View) -> Result<(Endpoint, Answer), Failed> {
    let request = Request {
        target: &plan.target,
        basic: plan.basic.as_deref(),
        timeout: TIMEOUT,
    };
    let mut tried = Vec::new();
    for way in &plan.ways {
        match client::exchange(way, &request, &mut |bytes| view.feed(bytes)) {
            Ok(answer) => return Ok((way.clone(), answer)),
            Err(e @ ExchangeError::Unanswered(_)) => tried.push((way.clone(), e)),
            Err(e) => return Err(Failed::Cut(way.clone(), e)),
        }
    }
    Err(Failed::Unanswered(tried))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, ConfigDir};

    fn config(words: &[&str]) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        load(ConfigDir::Path(dir.path().to_path_buf()), &words)
            .config
            .unwrap()
    }

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp(host.into(), port)
    }

    const SOCKET: &str = "SocketPath=/run/debcache/socket";

    #[test]
    fn by_default_the_expiration_over_the_socket_then_tcp() {
        let plan = plan(&config(&[SOCKET]), &Env::default(), |_| true).unwrap();
        assert_eq!(
            plan,
            Plan {
                target: "/acng-report.html?doExpire=Start+Expiration&abortOnErrors=aOe".into(),
                basic: None,
                ways: vec![
                    Endpoint::Socket("/run/debcache/socket".into()),
                    tcp("127.0.0.1", 3142)
                ],
            }
        );
    }

    #[test]
    fn acngreq_chooses_the_action() {
        let env = |q: &str| Env {
            request: Some(q.into()),
            insecure: false,
        };
        let target = |q: &str| {
            plan(&config(&["ReportPage=/r.html"]), &env(q), |_| true)
                .unwrap()
                .target
        };
        assert_eq!(target("?doCount=Count+Objects"), "/r.html?doCount=Count+Objects");
        assert_eq!(target("doCount=1"), "/r.html?doCount=1");
        assert_eq!(target(""), "/r.html");
        assert_eq!(target("?a=b c\r\nX: y"), "/r.html?a=b%20c%0D%0AX:%20y");
    }

    #[test]
    fn every_bind_address_is_a_way_in() {
        let c = config(&[
            "BindAddress=0.0.0.0 :: 192.0.2.1:8080 cache.lan 127.0.0.1",
            "Port=3143",
        ]);
        assert_eq!(
            tcp_ways(&c.listen),
            [
                tcp("127.0.0.1", 3143),
                tcp("::1", 3143),
                tcp("192.0.2.1", 8080),
                tcp("cache.lan", 3143)
            ]
        );
        let c = config(&["Port=0", "BindAddress=127.0.0.1 127.0.0.1:9", SOCKET]);
        assert_eq!(tcp_ways(&c.listen), [tcp("127.0.0.1", 9)]);
        assert!(tcp_ways(&config(&["Port=0", SOCKET]).listen).is_empty());
    }

    #[test]
    fn credentials_go_over_the_socket_only() {
        let c = config(&["AdminAuth=admin:secret", SOCKET]);
        let plan_of = |insecure, ok: bool| {
            plan(
                &c,
                &Env {
                    request: None,
                    insecure,
                },
                |_| ok,
            )
        };
        let safe = plan_of(false, true).unwrap();
        assert_eq!(safe.ways, [Endpoint::Socket("/run/debcache/socket".into())]);
        assert_eq!(safe.basic.as_deref(), Some("YWRtaW46c2VjcmV0"));
        assert_eq!(
            plan_of(false, false),
            Err(Refused::SocketNotAccessible("/run/debcache/socket".into()))
        );
        assert_eq!(plan_of(true, false).unwrap().ways, [tcp("127.0.0.1", 3142)]);
        assert_eq!(plan_of(true, true).unwrap().ways.len(), 2);
        let no_socket = config(&["AdminAuth=admin:secret"]);
        assert_eq!(
            plan(&no_socket, &Env::default(), |_| true),
            Err(Refused::NoSocket)
        );
    }

    #[test]
    fn without_credentials_a_missing_socket_means_tcp() {
        let plan = plan(&config(&[SOCKET]), &Env::default(), |_| false).unwrap();
        assert_eq!(plan.ways, [tcp("127.0.0.1", 3142)]);
        let none = super::plan(&config(&[SOCKET, "Port=0"]), &Env::default(), |_| false);
        assert_eq!(none, Err(Refused::NoWay));
    }

    #[test]
    fn no_report_page_no_request() {
        let refused = plan(&config(&["ReportPage="]), &Env::default(), |_| true).unwrap_err();
        assert_eq!(refused, Refused::NoReportPage);
        assert_eq!(refused.exit_code(), 255);
    }

    #[test]
    fn only_sockets_count_as_accessible() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(!accessible(&file));
        assert!(!accessible(&dir.path().join("none")));
        let sock = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(accessible(&sock));
    }
}
