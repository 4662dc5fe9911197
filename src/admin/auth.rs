//! The admin gate: whether a query on the report page may run, and which
//! action it asks for (spec §8.1–8.2, ARCHITECTURE.md Decisions "admin").
//! The page without a query string is not gated: everyone may read it.
//!
//! | query string | `AdminAuth` set | `AdminAuth` unset |
//! |---|---|---|
//! | any, cross-site | 403 `CrossSite` | 403 `CrossSite` |
//! | read-only action | Basic credentials, else 401 | runs |
//! | destructive action | Basic credentials, else 401 | loopback and unix socket only, else 403 `NotLocal` |
//!
//! Checked in that order: a forged page cannot make a logged-in browser
//! run anything, whatever the credentials it holds.
//!
//! - **Cross-site.** `Sec-Fetch-Site` decides when present (`cross-site`
//!   and unknown values refuse; `same-origin`, `same-site`, `none` pass):
//!   browsers that send it send it truthfully. Without it, an `Origin` (then
//!   a `Referer`) must name the `Host` the request was sent to; `Origin:
//!   null` and anything unparsable refuse. No header at all (curl, acngtool,
//!   cron) passes. A limit of GET triggers: browsers send `Sec-Fetch-Site`
//!   only to https and localhost, and no `Origin` with a GET, so a forged
//!   link to a cache reached by plain http under a LAN name, sent with no
//!   `Referer` (a referrer policy, or from an https page), gets past this
//!   check; credentials and the loopback rule still apply to it.
//! - **Credentials.** `Authorization: Basic <base64 of user:password>`,
//!   compared in constant time with `subtle`. The scheme is matched without
//!   regard to case (RFC 9110 §11.1), where acng wants the literal `Basic`;
//!   any other scheme gets the 401 challenge (acng: `200 Not Authorized`).
//!   The password may hold `:` (the configuration splits at the first one).
//! - **Local.** A request that carries `X-Forwarded-For`, `Forwarded` or
//!   `Via` came through a balancer or another proxy, so it is remote
//!   whatever socket it arrived on, the unix socket included.
//!
//! The [`Action`] the gate lets through is the one to run: dispatch on it,
//! never on the query text again, so the gate and the page cannot disagree.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderValue};
use subtle::ConstantTimeEq as _;

use crate::config::AdminAuth;
use crate::url::{strip_prefix_ignore_case, HttpUrl};

/// acng's challenge, which acngtool and browsers answer.
pub const CHALLENGE: &str = "Basic realm=\"For login data, see AdminAuth in Apt-Cacher NG config files\"";

/// What a report-page query asks for: the first trigger found in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `?doExpire=Start+Expiration`: the expiration scan.
    Expire,
    /// `?justShow=Show+unreferenced`: list the orphan candidates.
    ListOrphans,
    /// `?justRemove=Delete+unreferenced`: delete the listed orphans.
    RemoveOrphans,
    /// `?justShowDamaged=Show+damaged`: list the damaged files.
    ListDamaged,
    /// `?justRemoveDamaged=Delete+damaged`: delete them.
    RemoveDamaged,
    /// `?justTruncDamaged=Truncate+damaged`: truncate them to zero bytes.
    TruncateDamaged,
    /// `?doImport=Start+Import`: import from `_import`.
    Import,
    /// `?doMirror=Start+Mirroring`: precache per `PrecacheFor`.
    Mirror,
    /// `?doDelete=Delete+selected&kf=3k`: the confirmation page.
    ConfirmDelete,
    /// `?doDeleteYes=Delete&kf=3k`: delete the selected files.
    Delete,
    /// `?doTruncate=Truncate+selected&kf=3k`: the confirmation page.
    ConfirmTruncate,
    /// `?doTruncateYes=Truncate&kf=3k`: truncate the selected files.
    Truncate,
    /// `?doResetStats=Reset`: zero the transfer statistics (debcache's).
    ResetStats,
    /// `?doCount=Count+Data`: the page with the log analysis filled in.
    Count,
    /// `?doTraceStart=Start`: start collecting unmatched paths.
    TraceStart,
    /// `?doTraceEnd=Stop`: stop collecting them.
    TraceEnd,
    /// `?doExpire=Start&sigabort=1234`: cancel the running task.
    Abort,
    /// `?format=json`, `?doTraceStop=Stop`, or no trigger at all: the page.
    Report,
}

/// acng's triggers in acng's order (spec §8.1); each includes its `=`, so
/// `justShow=` does not match `justShowDamaged=`. debcache's statistics
/// reset sits with the destructive ones, before `doCount=`.
const TRIGGERS: [(&str, Action); 17] = [
    ("doExpire=", Action::Expire),
    ("justShow=", Action::ListOrphans),
    ("justRemove=", Action::RemoveOrphans),
    ("justShowDamaged=", Action::ListDamaged),
    ("justRemoveDamaged=", Action::RemoveDamaged),
    ("justTruncDamaged=", Action::TruncateDamaged),
    ("doImport=", Action::Import),
    ("doMirror=", Action::Mirror),
    ("doDelete=", Action::ConfirmDelete),
    ("doDeleteYes=", Action::Delete),
    ("doTruncate=", Action::ConfirmTruncate),
    ("doTruncateYes=", Action::Truncate),
    ("doResetStats=", Action::ResetStats),
    ("doCount=", Action::Count),
    ("doTraceStart=", Action::TraceStart),
    ("doTraceEnd=", Action::TraceEnd),
    // Not a trigger of its own in acng, but its Cancel link appends it to
    // the task's query; it wins over the task it rides on (below).
    ("sigabort=", Action::Abort),
];

impl Action {
    /// Classifies a (decoded) query string. `sigabort=` goes first: the
    /// Cancel link is the task's own URL plus `&sigabort=`, and acng cancels
    /// rather than starting the task again. `format=json` chooses how a page
    /// is written, not what runs.
    pub fn of(query: &str) -> Action {
        if query.contains("sigabort=") {
            return Action::Abort;
        }
        TRIGGERS
            .iter()
            .find(|(trigger, _)| query.contains(trigger))
            .map_or(Action::Report, |&(_, action)| action)
    }

    /// The task's name, as acng's task pages and cron mails give it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Expire => "Expiration",
            Action::ListOrphans => "Expired Files Listing",
            Action::RemoveOrphans => "Expired Files Purging",
            Action::ListDamaged => "Listing Damaged Files",
            Action::RemoveDamaged => "Removing Damaged Files",
            Action::TruncateDamaged => "Truncating Damaged Files",
            Action::Import => "Data Import",
            Action::Mirror => "Archive Mirroring",
            Action::ConfirmDelete | Action::ConfirmTruncate => "Confirmation",
            Action::Delete => "Manual File Deletion (Confirmed)",
            Action::Truncate => "Manual File Truncation (Confirmed)",
            Action::ResetStats => "Statistics Reset",
            Action::Count => "Count Objects",
            Action::TraceStart | Action::TraceEnd => "Pattern Tracing",
            Action::Abort => "Cancellation",
            Action::Report => "Report",
        }
    }

    /// Reads the cache and its statistics without changing them, or only
    /// narrows what is served (stopping the pattern trace). Starting the
    /// trace is not: while it runs, any path of a mirror is fetched.
    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            Action::ListOrphans | Action::ListDamaged | Action::Count | Action::TraceEnd | Action::Report
        )
    }
}

/// Where a connection comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locality {
    /// TCP from this host (`127.0.0.0/8`, `::1`, v4-mapped loopback).
    Loopback,
    /// The unix socket (`SocketPath`): acngtool and cron.
    UnixSocket,
    Remote,
}

impl Locality {
    /// From a connection's peer address; `None` is the unix socket.
    pub fn of(peer: Option<IpAddr>) -> Locality {
        match peer {
            None => Locality::UnixSocket,
            Some(ip) if ip.to_canonical().is_loopback() => Locality::Loopback,
            Some(_) => Locality::Remote,
        }
    }
}

/// Why a query on the report page does not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// `AdminAuth` is set and the request has no Basic credentials.
    NeedsCredentials,
    /// `AdminAuth` is set and the credentials are not those.
    WrongCredentials,
    /// `AdminAuth` is unset and a destructive action came from elsewhere
    /// than this host.
    NotLocal,
    /// A browser was sent here by another site's page.
    CrossSite,
}

impl Denied {
    /// The `WWW-Authenticate` value a refusal carries, if any.
    pub fn challenge(self) -> Option<&'static str> {
        match self {
            Denied::NeedsCredentials | Denied::WrongCredentials => Some(CHALLENGE),
            Denied::NotLocal | Denied::CrossSite => None,
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Denied::NeedsCredentials => "no AdminAuth credentials",
            Denied::WrongCredentials => "wrong AdminAuth credentials",
            Denied::NotLocal => "maintenance from another host without AdminAuth",
            Denied::CrossSite => "cross-site request",
        })
    }
}

impl std::error::Error for Denied {}

/// Lets a report-page query through, or says why not (table above).
pub fn check(
    query: &str,
    headers: &HeaderMap,
    from: Locality,
    auth: Option<&AdminAuth>,
) -> Result<Action, Denied> {
    if is_cross_site(headers) {
        return Err(Denied::CrossSite);
    }
    let action = Action::of(query);
    match auth {
        Some(auth) => credentials(headers, auth)?,
        None if action.is_read_only() || is_local(from, headers) => {}
        None => return Err(Denied::NotLocal),
    }
    Ok(action)
}

fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"same-site" | b"none");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| HttpUrl::parse(h).ok());
    let claimed = if headers.contains_key(header::ORIGIN) {
        headers.get_all(header::ORIGIN)
    } else {
        headers.get_all(header::REFERER)
    };
    claimed
        .iter()
        .any(|url| !host.as_ref().is_some_and(|host| names_host(url, host)))
}

/// `url` is an http(s) URL of the host and port `host` names (`null`, other
/// schemes and unparsable values are not).
fn names_host(url: &HeaderValue, host: &HttpUrl) -> bool {
    let Ok(text) = url.to_str() else {
        return false;
    };
    let absolute = ["http://", "https://"]
        .iter()
        .any(|scheme| strip_prefix_ignore_case(text, scheme).is_some());
    absolute
        && HttpUrl::parse(text).is_ok_and(|u| u.host.eq_ignore_ascii_case(&host.host) && u.port == host.port)
}

fn is_local(from: Locality, headers: &HeaderMap) -> bool {
    let forwarded = ["x-forwarded-for", "forwarded", "via"]
        .iter()
        .any(|name| headers.contains_key(*name));
    from != Locality::Remote && !forwarded
}

fn credentials(headers: &HeaderMap, auth: &AdminAuth) -> Result<(), Denied> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Denied::NeedsCredentials);
    };
    let value = value.as_bytes();
    let (scheme, token) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], value[space..].trim_ascii()),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"Basic") {
        return Err(Denied::NeedsCredentials);
    }
    let given = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| Denied::WrongCredentials)?;
    let expected = format!("{}:{}", auth.user, auth.password);
    // Leaks only whether the lengths differ (subtle's slice comparison).
    if bool::from(given.ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(Denied::WrongCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use Denied::*;
    use Locality::*;

    fn basic(userpass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(userpass)
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_static("cache.lan:3142"));
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn admin() -> AdminAuth {
        AdminAuth {
            user: "admin".into(),
            password: "se:cret".into(),
        }
    }

    #[test]
    fn triggers_are_found_in_acngs_order() {
        let table = [
            ("", Report),
            ("doExpire=Start+Expiration&abortOnErrors=aOe", Expire),
            ("justShow=Show", ListOrphans),
            ("justRemove=Delete", RemoveOrphans),
            ("justShowDamaged=Show", ListDamaged),
            ("justRemoveDamaged=Delete", RemoveDamaged),
            ("justTruncDamaged=Truncate", TruncateDamaged),
            ("doImport=Start", Import),
            ("doMirror=Start&calcSize=cs", Mirror),
            ("doDelete=Delete&kf=3k", ConfirmDelete),
            ("doDeleteYes=Delete&kf=3k", Delete),
            ("doTruncate=Truncate&kf=3k", ConfirmTruncate),
            ("doTruncateYes=Truncate&kf=3k", Truncate),
            ("doResetStats=Reset", ResetStats),
            ("doCount=Count+Data", Count),
            ("doTraceStart=Start", TraceStart),
            ("doTraceEnd=Stop", TraceEnd),
            ("doTraceStop=Stop", Report),
            ("doTraceClear=Clear", Report),
            ("format=json", Report),
            ("doCount=1&format=json", Count),
            ("somethingElse=1", Report),
            // The first trigger in acng's order wins, not the first in the query.
            ("justRemove=1&doExpire=1", Expire),
            ("doCount=1&justShow=1", ListOrphans),
            // Without its `=` a name is not a trigger.
            ("doExpire", Report),
            ("doExpire=Start&sigabort=77", Abort),
            ("justShow=Show&sigabort=77", Abort),
        ];
        for (query, action) in table {
            assert_eq!(Action::of(query), action, "{query}");
        }
    }

    #[test]
    fn only_views_are_read_only() {
        let read_only = [ListOrphans, ListDamaged, Count, TraceEnd, Report];
        for (_, action) in TRIGGERS {
            assert_eq!(action.is_read_only(), read_only.contains(&action), "{action:?}");
        }
        assert!(Report.is_read_only());
    }

    #[test]
    fn locality_of_peers() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(Locality::of(None), UnixSocket);
        assert_eq!(Locality::of(ip("127.0.0.1")), Loopback);
        assert_eq!(Locality::of(ip("127.3.2.1")), Loopback);
        assert_eq!(Locality::of(ip("::1")), Loopback);
        assert_eq!(Locality::of(ip("::ffff:127.0.0.1")), Loopback);
        assert_eq!(Locality::of(ip("192.168.1.9")), Remote);
        assert_eq!(Locality::of(ip("fe80::1")), Remote);
    }

    /// A query, its headers besides `Host`, where it comes from, the outcome.
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        Locality,
        Result<Action, Denied>,
    );

    fn run(table: &[Case<'_>], auth: Option<&AdminAuth>) {
        for (query, pairs, from, outcome) in table {
            let got = check(query, &headers(pairs), *from, auth);
            assert_eq!(got, *outcome, "{query} {pairs:?} {from:?}");
        }
    }

    const AUTH: &str = "authorization";

    #[test]
    fn credentials_decide_with_admin_auth_set() {
        let right = basic("admin:se:cret");
        let lower = right.replace("Basic", "basic");
        let upper = right.replace("Basic ", "BASIC   ");
        let (wrong, user) = (basic("admin:wrong"), basic("root:se:cret"));
        let (prefix, longer, empty) = (basic("admin:se"), basic("admin:se:cret "), basic(""));
        let cross = ("sec-fetch-site", "cross-site");
        run(
            &[
                ("doExpire=1", &[(AUTH, &right)], Remote, Ok(Expire)),
                ("doCount=1", &[(AUTH, &right)], Remote, Ok(Count)),
                ("", &[(AUTH, &right)], Remote, Ok(Report)),
                // Any query string, read-only or not, from any peer.
                ("doCount=1", &[], Remote, Err(NeedsCredentials)),
                ("", &[], Loopback, Err(NeedsCredentials)),
                ("doExpire=1", &[], UnixSocket, Err(NeedsCredentials)),
                ("doExpire=1", &[(AUTH, &wrong)], Loopback, Err(WrongCredentials)),
                ("doExpire=1", &[(AUTH, &user)], Loopback, Err(WrongCredentials)),
                // A prefix or an extension of the right bytes is wrong.
                ("doExpire=1", &[(AUTH, &prefix)], Loopback, Err(WrongCredentials)),
                ("doExpire=1", &[(AUTH, &longer)], Loopback, Err(WrongCredentials)),
                ("doExpire=1", &[(AUTH, &empty)], Loopback, Err(WrongCredentials)),
                (
                    "doExpire=1",
                    &[(AUTH, "Basic !!not*base64")],
                    Loopback,
                    Err(WrongCredentials),
                ),
                ("doExpire=1", &[(AUTH, "Basic")], Loopback, Err(WrongCredentials)),
                // RFC 9110: the scheme is case-insensitive (acng: literal `Basic`).
                ("doExpire=1", &[(AUTH, &lower)], Remote, Ok(Expire)),
                ("doExpire=1", &[(AUTH, &upper)], Remote, Ok(Expire)),
                (
                    "doExpire=1",
                    &[(AUTH, "Bearer YWRtaW46c2U6Y3JldA==")],
                    Loopback,
                    Err(NeedsCredentials),
                ),
                // Cross-site goes first, right credentials or not.
                ("doCount=1", &[(AUTH, &right), cross], Loopback, Err(CrossSite)),
                ("doCount=1", &[cross], Loopback, Err(CrossSite)),
            ],
            Some(&admin()),
        );
    }

    #[test]
    fn peers_decide_with_admin_auth_unset() {
        let xff = ("x-forwarded-for", "192.0.2.1");
        run(
            &[
                ("doCount=1", &[], Remote, Ok(Count)),
                ("justShow=1", &[], Remote, Ok(ListOrphans)),
                ("doTraceStart=1", &[], Remote, Err(NotLocal)),
                ("doTraceStart=1", &[], Loopback, Ok(TraceStart)),
                ("doTraceEnd=1", &[], Remote, Ok(TraceEnd)),
                ("format=json", &[], Remote, Ok(Report)),
                ("", &[], Remote, Ok(Report)),
                ("doCount=1", &[xff], Loopback, Ok(Count)),
                ("doExpire=1", &[], Remote, Err(NotLocal)),
                ("justRemove=1", &[], Remote, Err(NotLocal)),
                ("doDeleteYes=1&kf=3", &[], Remote, Err(NotLocal)),
                ("doResetStats=1", &[], Remote, Err(NotLocal)),
                ("doCount=1&sigabort=3", &[], Remote, Err(NotLocal)),
                ("doExpire=1", &[], Loopback, Ok(Expire)),
                ("doExpire=1", &[], UnixSocket, Ok(Expire)),
                // Through a balancer or another proxy: not this host's own.
                ("doExpire=1", &[xff], Loopback, Err(NotLocal)),
                ("doExpire=1", &[xff], UnixSocket, Err(NotLocal)),
                (
                    "doExpire=1",
                    &[("forwarded", "for=192.0.2.1")],
                    Loopback,
                    Err(NotLocal),
                ),
                ("doExpire=1", &[("via", "1.1 squid")], Loopback, Err(NotLocal)),
                // Credentials are not asked for, and do not matter.
                ("doExpire=1", &[(AUTH, "Basic eDp5")], Loopback, Ok(Expire)),
            ],
            None,
        );
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let refused: &[&[(&str, &str)]] = &[
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "bogus")],
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://cache.lan:3142"),
            ],
            &[("origin", "http://evil.example")],
            &[("origin", "http://evil.example:3142")],
            &[("origin", "http://cache.lan")],
            &[("origin", "http://cache.lan:3143")],
            &[("origin", "https://cache.lan")],
            &[("origin", "null")],
            &[("origin", "file://")],
            &[("origin", "cache.lan:3142")],
            &[
                ("origin", "http://cache.lan:3142"),
                ("origin", "http://evil.example"),
            ],
            // The Origin decides when present, even with a same-host Referer.
            &[
                ("origin", "http://evil.example"),
                ("referer", "http://cache.lan:3142/"),
            ],
            &[("referer", "http://evil.example/page.html")],
            &[("referer", "http://cache.lan.evil.example:3142/")],
            &[("referer", "http://cache.lan@evil.example:3142/")],
            &[("referer", "not a url")],
        ];
        for pairs in refused {
            for from in [Loopback, UnixSocket, Remote] {
                let outcome = check("doCount=1", &headers(pairs), from, None);
                assert_eq!(outcome, Err(CrossSite), "{pairs:?} {from:?}");
            }
        }
        let no_host =
            HeaderMap::from_iter([(header::ORIGIN, HeaderValue::from_static("http://cache.lan:3142"))]);
        assert_eq!(check("doCount=1", &no_host, Loopback, None), Err(CrossSite));
    }

    #[test]
    fn same_origin_and_headerless_requests_pass() {
        let allowed: &[&[(&str, &str)]] = &[
            &[],
            &[("sec-fetch-site", "same-origin")],
            &[("sec-fetch-site", "same-site")],
            &[("sec-fetch-site", "none")],
            // Sec-Fetch-Site is the browser's own word; it decides alone.
            &[
                ("sec-fetch-site", "same-origin"),
                ("referer", "http://evil.example/"),
            ],
            &[("origin", "http://cache.lan:3142")],
            &[("origin", "http://CACHE.lan:3142")],
            &[("referer", "http://cache.lan:3142/acng-report.html")],
            &[("referer", "http://cache.lan:3142/acng-report.html?doCount=1")],
        ];
        for pairs in allowed {
            assert_eq!(
                check("doExpire=1", &headers(pairs), Loopback, None),
                Ok(Expire),
                "{pairs:?}"
            );
        }
        let mut default_port = HeaderMap::new();
        default_port.insert(header::HOST, HeaderValue::from_static("cache.lan"));
        default_port.insert(header::ORIGIN, HeaderValue::from_static("http://cache.lan"));
        assert_eq!(check("doExpire=1", &default_port, Loopback, None), Ok(Expire));
        default_port.insert(header::ORIGIN, HeaderValue::from_static("http://cache.lan:80"));
        assert_eq!(check("doExpire=1", &default_port, Loopback, None), Ok(Expire));
        let mut v6 = HeaderMap::new();
        v6.insert(header::HOST, HeaderValue::from_static("[::1]:3142"));
        v6.insert(header::ORIGIN, HeaderValue::from_static("http://[::1]:3142"));
        assert_eq!(check("doExpire=1", &v6, Loopback, None), Ok(Expire));
    }
}
