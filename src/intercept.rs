//! Caching `deb https://` lines unchanged (`TlsInterceptDomains`): for a
//! CONNECT to a listed host, debcache answers the TLS itself with a leaf
//! certificate of its own local CA, and the requests inside go through the
//! cache like `HTTPS///` ones (the mirror is still verified as usual).
//!
//! The CA lives in `CacheDir/_debcache/ca/` (`ca.key` 0600, never served;
//! `ca.pem`, offered to clients; `ca.domains`, what it was made for). Its
//! X.509 name constraints are the domains it was made for, so clients that
//! trust it trust it for those names only. A domain added later is not
//! intercepted until the CA is renewed (remove the directory, restart, and
//! give clients the new `ca.pem`).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, GeneralSubtree, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, NameConstraints,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Leaf configurations kept; beyond, the cache starts over.
const MAX_LEAVES: usize = 1024;
/// A leaf is valid from yesterday for this many days...
const LEAF_DAYS: i64 = 365;
/// ...and minted again after this many.
const LEAF_REMINT_DAYS: u64 = 300;
/// The CA's validity, from yesterday.
const CA_DAYS: i64 = 10 * 365;
const CA_NAME: &str = "debcache interception CA";

/// The CA and the certificates it has minted.
pub struct Interceptor {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    /// Configured and covered by the CA's constraints: lower case.
    domains: Vec<String>,
    leaves: Mutex<HashMap<String, (std::time::Instant, Arc<rustls::ServerConfig>)>>,
}

impl fmt::Debug for Interceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interceptor")
            .field("domains", &self.domains)
            .finish()
    }
}

/// Why the CA cannot be used.
#[derive(Debug)]
pub enum InterceptError {
    Io { path: PathBuf, source: std::io::Error },
    Certificate(rcgen::Error),
    Tls(rustls::Error),
}

impl fmt::Display for InterceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterceptError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            InterceptError::Certificate(e) => write!(f, "interception CA: {e}"),
            InterceptError::Tls(e) => write!(f, "interception certificate: {e}"),
        }
    }
}

impl std::error::Error for InterceptError {}

impl Interceptor {
    /// The interceptor for `domains` with the CA in `dir`, made on first
    /// use; `None` when no domain is configured.
    pub fn open(dir: &Path, domains: &[String]) -> Result<Option<Interceptor>, InterceptError> {
        if domains.is_empty() {
            return Ok(None);
        }
        let configured: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| InterceptError::Io { path, source }
        };
        let (key_path, pem_path, list_path) =
            (dir.join("ca.key"), dir.join("ca.pem"), dir.join("ca.domains"));
        if !key_path.exists() {
            make_ca(dir, &configured)?;
        }
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let key = KeyPair::from_pem(&key_pem).map_err(InterceptError::Certificate)?;
        let list = std::fs::read_to_string(&list_path).map_err(io(&list_path))?;
        let made_for: Vec<String> = list.split_whitespace().map(str::to_string).collect();
        let ca_pem = std::fs::read_to_string(&pem_path).map_err(io(&pem_path))?;
        let (covered, outside): (Vec<String>, Vec<String>) =
            configured.into_iter().partition(|d| made_for.contains(d));
        if !outside.is_empty() {
            tracing::warn!(
                "TlsInterceptDomains lists {}, which the CA in {} does not cover: not intercepted. \
                 To renew the CA: remove {} and restart, then give clients the new ca.pem",
                outside.join(" "),
                dir.display(),
                dir.display()
            );
        }
        Ok(Some(Interceptor {
            // Signing needs the CA's name and key, which these are.
            issuer: Issuer::new(ca_params(&made_for), key),
            ca_pem,
            domains: covered,
            leaves: Mutex::new(HashMap::new()),
        }))
    }

    /// The CA certificate, for clients to trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Whether CONNECTs to `host` are answered here: a listed name, a name
    /// below a listed domain, or a listed address.
    pub fn covers(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.domains.iter().any(|d| {
            host == *d
                || (d.parse::<IpAddr>().is_err()
                    && host.strip_suffix(d.as_str()).is_some_and(|h| h.ends_with('.')))
        })
    }

    /// A TLS server configuration presenting a certificate for `host`
    /// (covered: [`Interceptor::covers`]).
    pub fn server_config(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, InterceptError> {
        let host = host.to_ascii_lowercase();
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = std::time::Duration::from_secs(LEAF_REMINT_DAYS * 86_400);
        if let Some((_, config)) = leaves.get(&host).filter(|(made, _)| made.elapsed() < fresh) {
            return Ok(Arc::clone(config));
        }
        let mut params = CertificateParams::new(vec![host.clone()]).map_err(InterceptError::Certificate)?;
        params.distinguished_name.push(DnType::CommonName, host.as_str());
        set_validity(&mut params, LEAF_DAYS);
        let key = KeyPair::generate().map_err(InterceptError::Certificate)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(InterceptError::Certificate)?;
        let chain = vec![CertificateDer::from(cert.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(InterceptError::Tls)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(InterceptError::Tls)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        if leaves.len() >= MAX_LEAVES {
            leaves.clear();
        }
        leaves.insert(host, (std::time::Instant::now(), Arc::clone(&config)));
        Ok(config)
    }
}

/// The CA: may sign leaves only (path length 0), for `domains` only.
fn ca_params(domains: &[String]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "debcache");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    set_validity(&mut params, CA_DAYS);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: domains
            .iter()
            .map(|d| match d.parse::<IpAddr>() {
                Ok(ip) => GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                    ip,
                    if ip.is_ipv4() { 32 } else { 128 },
                )),
                Err(_) => GeneralSubtree::DnsName(d.clone()),
            })
            .collect(),
        excluded_subtrees: Vec::new(),
    });
    params
}

/// Valid from yesterday (clocks differ) until `days` after it, at
/// midnight UTC.
fn set_validity(params: &mut CertificateParams, days: i64) {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64);
    let at = |day: i64| {
        let (y, m, d) = crate::calendar::civil_from_days(day);
        rcgen::date_time_ymd(i32::try_from(y).unwrap_or(i32::MAX), m, d)
    };
    params.not_before = at(today - 1);
    params.not_after = at(today - 1 + days);
}

/// Makes a CA for `domains` in `dir`, all of it or nothing: the files are
/// written to a directory beside it that is then renamed into place, so a
/// crash leaves no half CA, and of instances sharing `dir` that start at
/// once, one CA wins and every instance uses it.
fn make_ca(dir: &Path, domains: &[String]) -> Result<(), InterceptError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InterceptError::Io { path, source }
    };
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("ca");
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let staging = parent.join(format!(".{name}.{}.{n}.new", std::process::id()));
    // A leftover of a crash of a process with this pid.
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(io(&staging))?;
    let written = (|| {
        let key = KeyPair::generate().map_err(InterceptError::Certificate)?;
        let cert = ca_params(domains)
            .self_signed(&key)
            .map_err(InterceptError::Certificate)?;
        for (file, text, mode) in [
            ("ca.key", key.serialize_pem(), 0o600),
            ("ca.pem", cert.pem(), 0o644),
            ("ca.domains", domains.join("\n") + "\n", 0o644),
        ] {
            let path = staging.join(file);
            write_new(&path, text.as_bytes(), mode).map_err(io(&path))?;
        }
        // An empty directory is replaced; one another instance completed
        // meanwhile is not, and is used instead.
        match std::fs::rename(&staging, dir) {
            Ok(()) => Ok(true),
            Err(_) if dir.join("ca.key").exists() => Ok(false),
            Err(e) => Err(io(dir)(e)),
        }
    })();
    if !matches!(written, Ok(true)) {
        let _ = std::fs::remove_dir_all(&staging);
    }
    if written? {
        tracing::info!(
            "made the interception CA {} for {}",
            dir.join("ca.pem").display(),
            domains.join(" ")
        );
    }
    Ok(())
}

/// Creates `path` with permissions `mode`, durably.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_ca_is_made_once_private_and_covers_only_its_domains() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let domains = vec!["Download.Docker.com".to_string(), "127.0.0.1".to_string()];
        let first = Interceptor::open(&ca, &domains).unwrap().unwrap();
        let mode = std::fs::metadata(ca.join("ca.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(first.covers("download.docker.com") && first.covers("a.download.docker.com"));
        assert!(first.covers("127.0.0.1"));
        assert!(!first.covers("evildownload.docker.com") && !first.covers("docker.com"));
        assert!(first.server_config("download.docker.com").is_ok());
        // Opened again with one more domain: the same CA, the new name not covered.
        let more = [domains.clone(), vec!["packages.gitlab.com".to_string()]].concat();
        let again = Interceptor::open(&ca, &more).unwrap().unwrap();
        assert_eq!(again.ca_pem(), first.ca_pem());
        assert!(!again.covers("packages.gitlab.com"));
        assert!(Interceptor::open(&ca, &[]).unwrap().is_none());
    }

    #[test]
    fn instances_sharing_a_directory_get_one_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("shared/ca");
        // An empty directory, as an admin may have made for it.
        std::fs::create_dir_all(&ca).unwrap();
        let domains = vec!["deb.example.org".to_string()];
        let pems: Vec<String> = std::thread::scope(|s| {
            let opens: Vec<_> = (0..4)
                .map(|_| s.spawn(|| Interceptor::open(&ca, &domains).unwrap().unwrap()))
                .collect();
            opens
                .into_iter()
                .map(|o| o.join().unwrap().ca_pem().to_string())
                .collect()
        });
        assert!(pems.iter().all(|p| *p == pems[0]), "more than one CA");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("shared"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["ca"], "staging directories left behind");
    }
}
