//! Loading end to end: directories, overrides, fall-backs and every error.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/acng-3.7.4")
}

/// A configuration directory holding `files`.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn load_dir(dir: &Path, overrides: &[&str]) -> Loaded {
    let words: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    load(ConfigDir::Path(dir.to_path_buf()), &words)
}

fn messages(loaded: &Loaded, severity: Severity) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .map(ToString::to_string)
        .collect()
}

fn remap<'a>(config: &'a Config, name: &str) -> &'a Remap {
    config.remaps.iter().find(|r| r.name == name).unwrap()
}

#[test]
fn debian_package_configuration_loads_unchanged() {
    let support = fixture_dir().join("support");
    let loaded = load_dir(
        &fixture_dir().join("etc/apt-cacher-ng"),
        &[&format!("SupportDir={}", support.display())],
    );
    assert!(!loaded.has_errors(), "{:?}", messages(&loaded, Severity::Error));
    let config = loaded.config.unwrap();
    assert_eq!(
        config.storage.cache_dir,
        PathBuf::from("/var/cache/apt-cacher-ng")
    );
    assert_eq!(config.requests.report_page.as_deref(), Some("acng-report.html"));
    assert_eq!(config.maintenance.expiration.threshold_days, 4);
    let debrep = remap(&config, "debrep");
    assert_eq!((debrep.merges.len(), debrep.backends.len()), (506, 1));
    let uburep = remap(&config, "uburep");
    assert_eq!((uburep.merges.len(), uburep.backends.len()), (790, 1));
    let secdeb = remap(&config, "secdeb");
    assert_eq!((secdeb.merges.len(), secdeb.backends.len()), (5, 3));
    assert_eq!(
        config.requests.local_dirs["acng-doc"],
        PathBuf::from("/usr/share/doc/apt-cacher-ng")
    );
}

#[test]
fn embedded_defaults_load_cleanly() {
    let loaded = load(ConfigDir::Embedded, &[]);
    let noisy: Vec<_> = loaded.diagnostics.iter().map(ToString::to_string).collect();
    assert!(noisy.is_empty(), "{noisy:?}");
    let config = loaded.config.unwrap();
    assert_eq!(config.listen.port, 3142);
    assert_eq!(config.log.log_dir, None);
    assert_eq!(config.source.support_dir, None);
    assert_eq!(config.listen.socket_path, None);
    assert!(
        config.storage.cache_dir.ends_with("debcache"),
        "{}",
        config.storage.cache_dir.display()
    );
    let names: Vec<_> = config.remaps.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["debrep", "uburep", "secdeb"]);
    assert_eq!(
        remap(&config, "debrep").backends[0].to_string(),
        "http://ftp.debian.org/debian/"
    );
    assert_eq!(
        remap(&config, "uburep").backends[0].to_string(),
        "http://archive.ubuntu.com/ubuntu/"
    );
}

#[test]
fn files_are_read_in_alphabetical_order_then_the_command_line() {
    let dir = dir_with(&[
        ("b.conf", "Port: 2\nUserAgent: b\n"),
        ("a.conf", "Port: 1\nExThreshold: 9\n"),
    ]);
    let loaded = load_dir(dir.path(), &["UserAgent=cli"]);
    let config = loaded.config.unwrap();
    assert_eq!(config.listen.port, 2);
    assert_eq!(config.maintenance.expiration.threshold_days, 9);
    assert_eq!(config.upstream.user_agent.as_deref(), Some("cli"));
}

#[test]
fn acng_builtin_defaults_apply_with_a_directory() {
    let dir = dir_with(&[("acng.conf", "")]);
    let config = load_dir(dir.path(), &[]).config.unwrap();
    assert_eq!(
        config.storage.cache_dir,
        PathBuf::from("/var/cache/apt-cacher-ng")
    );
    assert_eq!(config.log.log_dir, Some(PathBuf::from("/var/log/apt-cacher-ng")));
    assert_eq!(config.upstream.network_timeout, Duration::from_secs(17));
    assert_eq!(
        config.listen.socket_path, None,
        "debcache leaves SocketPath unset"
    );
    assert_eq!(config.requests.report_page.as_deref(), Some("acng-report.html"));
    assert_eq!(config.requests.allow_user_ports, PortPolicy::Only80);
    assert!(config.remaps.is_empty(), "the embedded remaps are not merged in");
}

#[test]
fn derived_defaults_follow_their_keys() {
    let dir = dir_with(&[(
        "acng.conf",
        "ForceManaged: 1\nFreshIndexMaxAge: 7\nExThreshold: 3\n",
    )]);
    let config = load_dir(dir.path(), &[]).config.unwrap();
    assert_eq!(config.upstream.redir_max, 0);
    assert!(!config.requests.forward_bts_soap);
    assert_eq!(config.maintenance.expiration.suppress_admin_notification, 0);
    let freeze = config
        .source
        .effective
        .iter()
        .find(|(k, _)| *k == "ResponseFreezeDetectTime")
        .unwrap();
    assert_eq!(freeze.1, "20");
}

#[test]
fn every_bad_value_is_reported_with_its_line() {
    let text =
        "Port: 70000\nNetworkTimeout: soon\nVfilePatternEx: (unclosed\nDirPerms: 9\nExStartTradeOff: 5x\n\
                AllowUserPorts: 80 https\nProxy: ftp://p/\nBindAddress: [::1\nLocalDirs: docs relative\n\
                ConnectProto: v5\nPidFile: run/pid\nOfflineMode:\nDebug: -4223\n";
    let dir = dir_with(&[("acng.conf", text)]);
    let loaded = load_dir(dir.path(), &[]);
    assert!(loaded.config.is_none());
    let errors = messages(&loaded, Severity::Error);
    let lines: Vec<usize> = errors
        .iter()
        .map(|e| e.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lines, (1..=13).collect::<Vec<_>>(), "{errors:#?}");
    assert!(
        errors[0].ends_with("Port: 70000 is outside 0..=65535"),
        "{}",
        errors[0]
    );
    assert!(
        errors[2].contains("VfilePatternEx: invalid regular expression"),
        "{}",
        errors[2]
    );
}

#[test]
fn too_small_timeouts_are_raised_with_a_warning() {
    let dir = dir_with(&[("acng.conf", "NetworkTimeout: 1\n")]);
    let loaded = load_dir(dir.path(), &[]);
    assert_eq!(messages(&loaded, Severity::Warning).len(), 1);
    assert_eq!(
        loaded.config.unwrap().upstream.network_timeout,
        Duration::from_secs(5)
    );
}

#[test]
fn unknown_keys_warn_and_typos_fail() {
    let dir = dir_with(&[("acng.conf", "SomeFutureOption: 1\nCacheDri: /x\n")]);
    let loaded = load_dir(dir.path(), &[]);
    let file = dir.path().canonicalize().unwrap().join("acng.conf");
    assert_eq!(
        messages(&loaded, Severity::Warning),
        [format!(
            "{}:1: warning: unknown directive `SomeFutureOption`, ignored",
            file.display()
        )]
    );
    assert_eq!(
        messages(&loaded, Severity::Error),
        [format!(
            "{}:2: error: unknown directive `CacheDri`; did you mean `CacheDir`?",
            file.display()
        )]
    );
}

#[test]
fn unreadable_security_conf_refuses_to_start() {
    let dir = dir_with(&[("acng.conf", "Port: 3142\n")]);
    std::os::unix::fs::symlink("/nonexistent/security.conf", dir.path().join("security.conf")).unwrap();
    let loaded = load_dir(dir.path(), &[]);
    assert!(loaded.config.is_none());
    let errors = messages(&loaded, Severity::Error);
    assert!(
        errors[0].contains("security.conf: error: cannot read"),
        "{errors:?}"
    );
}

#[test]
fn security_conf_accepts_only_known_keys() {
    let dir = dir_with(&[("security.conf", "AdminAuth: admin:secret\nAdminPassword: x\n")]);
    let loaded = load_dir(dir.path(), &[]);
    assert_eq!(messages(&loaded, Severity::Error).len(), 1);
}

#[test]
fn admin_auth_is_never_printed() {
    let dir = dir_with(&[
        ("security.conf", "AdminAuth: admin:secret\n"),
        (
            "acng.conf",
            "Proxy: http://u:pw@p:3128/\nRemap-r: /r ; http://u:pw@b.example/r\n",
        ),
    ]);
    let config = load_dir(dir.path(), &[]).config.unwrap();
    assert_eq!(config.requests.admin_auth.as_ref().unwrap().password, "secret");
    for full in [false, true] {
        let printed = render(&config, full);
        assert!(printed.contains("AdminAuth: ********\n"));
        assert!(printed.contains("Proxy: http://u:***@p:3128/\n"));
        assert!(printed.contains("http://u:***@b.example/r/"), "{printed}");
        assert!(!printed.contains("secret") && !printed.contains(":pw@"));
    }
    assert!(!format!("{config:?}").contains("secret"));
}

#[test]
fn missing_config_directory_is_an_error() {
    let loaded = load(ConfigDir::Path("/nonexistent/debcache-conf".into()), &[]);
    assert!(loaded.config.is_none());
    assert_eq!(
        messages(&loaded, Severity::Error),
        ["/nonexistent/debcache-conf: error: no such configuration directory"]
    );
}

#[test]
fn a_file_given_as_config_directory_is_the_directorys_problem() {
    let dir = dir_with(&[("acng.conf", "Port: 1\n")]);
    let file = dir.path().join("acng.conf");
    let loaded = load(ConfigDir::Path(file.clone()), &[]);
    assert!(loaded.config.is_none());
    let errors = messages(&loaded, Severity::Error);
    let expected = format!(
        "{}: error: cannot read this configuration directory: ",
        file.display()
    );
    assert!(
        errors.len() == 1 && errors[0].starts_with(&expected),
        "{errors:?}"
    );
}

#[test]
fn unknown_override_is_an_error() {
    let dir = dir_with(&[]);
    let loaded = load_dir(dir.path(), &["NoSuchKeyAnywhere=1"]);
    assert_eq!(
        messages(&loaded, Severity::Error),
        ["command line:1: error: unknown directive `NoSuchKeyAnywhere`"]
    );
}

#[test]
fn support_dir_from_the_command_line_resolves_file_tokens() {
    let support = dir_with(&[(
        "my_mirrors",
        "http://m1.example/debian/\nhttp://m2.example/debian/\n",
    )]);
    let conf = dir_with(&[(
        "acng.conf",
        "Remap-x: file:my_mirrors ; http://b.example/debian/\n",
    )]);
    let loaded = load_dir(
        conf.path(),
        &[&format!("SupportDir={}", support.path().display())],
    );
    assert_eq!(remap(loaded.config.as_ref().unwrap(), "x").merges.len(), 2);
}

#[test]
fn config_dir_wins_a_name_clash_with_support_dir() {
    let support = dir_with(&[
        ("m_list", "http://support.example/\n"),
        ("m_other", "http://other.example/\n"),
    ]);
    let conf = dir_with(&[
        ("acng.conf", "Remap-x: file:m_*\n"),
        ("m_list", "http://conf.example/\n"),
    ]);
    let loaded = load_dir(
        conf.path(),
        &[&format!("SupportDir={}", support.path().display())],
    );
    let hosts: Vec<_> = remap(loaded.config.as_ref().unwrap(), "x")
        .merges
        .iter()
        .map(|m| m.host.clone())
        .collect();
    assert_eq!(hosts, ["conf.example", "other.example"]);
}

#[test]
fn empty_list_falls_back_to_its_default_file() {
    let conf = dir_with(&[
        ("acng.conf", "Remap-x: /x ; file:backends_x\n"),
        ("backends_x", "# nothing yet\n"),
        ("backends_x.default", "http://fallback.example/x/\n"),
    ]);
    let config = load_dir(conf.path(), &["SupportDir="]).config.unwrap();
    assert_eq!(
        remap(&config, "x").backends[0].to_string(),
        "http://fallback.example/x/"
    );
}

#[test]
fn dangling_default_links_fall_back_to_the_compiled_lists() {
    let conf = dir_with(&[
        (
            "acng.conf",
            "Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian\n",
        ),
        ("backends_debian", ""),
    ]);
    std::os::unix::fs::symlink(
        "/nonexistent/purged/backends_debian.default",
        conf.path().join("backends_debian.default"),
    )
    .unwrap();
    let loaded = load_dir(conf.path(), &["SupportDir=/nonexistent/support"]);
    let warnings = messages(&loaded, Severity::Warning);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("cannot read list") && w.contains("backends_debian.default")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`file:deb_mirror*.gz` matched nothing")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`file:backends_debian` matched nothing")),
        "{warnings:#?}"
    );
    let config = loaded.config.unwrap();
    let debrep = remap(&config, "debrep");
    assert_eq!((debrep.merges.len(), debrep.backends.len()), (506, 1));
}

#[test]
fn dont_cache_sets_both_lists_unless_they_are_set() {
    let patterns = dir_with(&[("nocache", "# isos\n\\.iso$\n\\.img$\n")]);
    let conf = dir_with(&[(
        "acng.conf",
        &format!(
            "DontCache: file:{}/nocache jigdo\nDontCacheResolved: ^https://\n",
            patterns.path().display()
        ),
    )]);
    let config = load_dir(conf.path(), &[]).config.unwrap();
    assert_eq!(config.requests.dont_cache_requested.len(), 3);
    assert_eq!(config.caching.dont_cache_resolved.len(), 1);
}

#[test]
fn port_zero_needs_another_listener() {
    let dir = dir_with(&[("acng.conf", "Port: 0\n")]);
    assert!(load_dir(dir.path(), &[]).has_errors());
    let config = load_dir(dir.path(), &["BindAddress=127.0.0.1:0"]).config.unwrap();
    assert_eq!(config.listen.bind_addresses[0].port, Some(0));
    assert!(load_dir(dir.path(), &["SocketPath=/run/x.sock"]).config.is_some());
}

#[test]
fn directives_not_in_effect_are_noted_once() {
    let dir = dir_with(&[("acng.conf", "UseWrap: 1\nPipelineDepth: 3\n")]);
    let loaded = load_dir(dir.path(), &[]);
    let notes = messages(&loaded, Severity::Note);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("accepted and ignored by design"), "{notes:?}");
}

#[test]
fn request_appendix_expands_escapes_and_drops_junk() {
    assert_eq!(
        request_appendix(r"X-A: 1\r\nX-B:2\nnot a header"),
        [
            ("X-A".to_string(), "1".to_string()),
            ("X-B".to_string(), "2".to_string())
        ]
    );
}

#[test]
fn print_config_shows_every_directive_and_remap_blocks() {
    let dir = dir_with(&[(
        "acng.conf",
        "Remap-r: /r h.example/r ; http://b.example/r/ ; keyfile=Release\n",
    )]);
    let config = load_dir(dir.path(), &[]).config.unwrap();
    let printed = render(&config, true);
    assert_eq!(
        printed
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with("Remap-"))
            .count(),
        keys::DIRECTIVES.len()
    );
    assert!(printed.contains("Port: 3142\n"));
    assert!(printed.ends_with(
        "Remap-r:\n  merge http://r/\n  merge http://h.example/r/\n  backend http://b.example/r/\n  flag keyfile=Release\n"
    ));
    assert!(render(&config, false)
        .ends_with("\nRemap-r: /r http://h.example/r/ ; http://b.example/r/ ; keyfile=Release\n"));
}

#[test]
fn print_config_shows_permissions_in_octal_as_configured() {
    let dir = dir_with(&[("acng.conf", "DirPerms: 2775\n")]);
    let printed = render(&load_dir(dir.path(), &[]).config.unwrap(), false);
    assert!(printed.contains("\nDirPerms: 02775\n"), "{printed}");
    assert!(printed.contains("\nFilePerms: 0664\n"), "{printed}");
}

#[test]
fn print_config_shows_each_list_by_name_and_count() {
    let dir = dir_with(&[
        ("acng.conf", "Remap-r: file:dcmirrors_* /r ; file:dcbackends\n"),
        ("dcmirrors_1", "http://one.example/r/\nhttp://two.example/r/\n"),
        ("dcmirrors_2", "http://three.example/r/\n"),
        ("dcbackends", "http://b.example/r/\n"),
    ]);
    let config = load_dir(dir.path(), &[]).config.unwrap();
    let r = remap(&config, "r");
    let files: Vec<_> = r.merge_sources[0]
        .files
        .iter()
        .map(|(f, n)| (f.file_name().unwrap().to_str().unwrap(), *n))
        .collect();
    assert_eq!(files, [("dcmirrors_1", 2), ("dcmirrors_2", 1)]);
    assert!(render(&config, false)
        .ends_with("\nRemap-r: file:dcmirrors_* (3 URLs) /r ; file:dcbackends (1 URL)\n"));
}

#[test]
fn check_report_ends_with_the_verdict() {
    let dir = dir_with(&[("acng.conf", "Port: many\nSomeFutureKnob: 1\n")]);
    let report = check_report(&load_dir(dir.path(), &[]));
    assert!(
        report.ends_with("\n1 error, 1 warning: debcache would not start\n"),
        "{report}"
    );
    assert!(
        !report.contains("read "),
        "nothing is summarised without a configuration"
    );
    let dir = dir_with(&[("acng.conf", "Remap-r: /r ; http://b.example/r/\n")]);
    let report = check_report(&load_dir(dir.path(), &[]));
    let acng = dir.path().canonicalize().unwrap().join("acng.conf");
    assert_eq!(
        report,
        format!(
            "read {}\nRemap-r: 1 merging URL, 1 backend\n1 remap: 1 merging URL and 1 backend; 0 list files read\nno problems\n",
            acng.display()
        )
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn loading_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("acng.conf"), &bytes).unwrap();
        fs::write(dir.path().join("list"), &bytes).unwrap();
        fs::write(dir.path().join("extra.conf"), b"Remap-x: file:list ; file:list\nDontCache: file:list\n").unwrap();
        let _ = load_dir(dir.path(), &[]);
    }

    #[test]
    fn arbitrary_assignments_never_panic(key in "[A-Za-z-]{1,8}[^\\s:=#]{0,16}", value in "\\PC{0,64}") {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("acng.conf"), format!("{key}: {value}\n")).unwrap();
        let _ = load_dir(dir.path(), &[&format!("{key}={value}")]);
    }
}

#[test]
fn no_ssl_checks_is_warned_about() {
    let dir = dir_with(&[("acng.conf", "NoSSLchecks: 1\n")]);
    let loaded = load_dir(dir.path(), &[]);
    assert!(loaded.config.as_ref().unwrap().upstream.tls.no_tls_checks);
    let warnings = messages(&loaded, Severity::Warning);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("acng.conf:1: warning: NoSSLchecks is on")),
        "{warnings:#?}"
    );
    let quiet = load_dir(dir_with(&[("acng.conf", "NoSSLchecks: 0\n")]).path(), &[]);
    assert!(messages(&quiet, Severity::Warning).is_empty());
}

#[test]
fn allowed_clients_default_to_loopback_and_private_ranges() {
    let config = crate::config::load(ConfigDir::Embedded, &[]).config.unwrap();
    let allowed = |ip: &str| {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        config.listen.allowed_clients.iter().any(|n| n.contains(ip))
    };
    for ip in [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.31.0.1",
        "192.168.1.1",
        "fd00::1",
        "::ffff:192.168.0.7",
    ] {
        assert!(allowed(ip), "{ip}");
    }
    for ip in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
        assert!(!allowed(ip), "{ip}");
    }
    let dir = dir_with(&[("acng.conf", "AllowedClients: 10.0.0.0/33 nonsense\n")]);
    let errors = messages(&load_dir(dir.path(), &[]), Severity::Error);
    assert!(errors.iter().any(|e| e.contains("`10.0.0.0/33`")), "{errors:#?}");
}

#[test]
fn tls_intercept_domains_are_read_and_the_renewal_is_explained() {
    let dir = dir_with(&[(
        "acng.conf",
        "TlsInterceptDomains: download.docker.com 127.0.0.1\n",
    )]);
    let loaded = load_dir(dir.path(), &[]);
    assert_eq!(
        loaded.config.as_ref().unwrap().requests.intercept_domains,
        ["download.docker.com", "127.0.0.1"]
    );
    let config = loaded.config.as_ref().unwrap();
    assert_eq!(
        config.intercept_ca_dir(),
        config.storage.cache_dir.join("_debcache/ca")
    );
    let notes = messages(&loaded, Severity::Note);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("CacheDir/_debcache/ca") && n.contains("remove that directory")),
        "{notes:#?}"
    );
}

#[test]
fn instances_can_share_one_interception_ca() {
    let dir = dir_with(&[(
        "acng.conf",
        "TlsInterceptDomains: deb.example.org\nTlsInterceptCaDir: /srv/debcache-ca\n",
    )]);
    let loaded = load_dir(dir.path(), &[]);
    let config = loaded.config.as_ref().unwrap();
    assert_eq!(config.intercept_ca_dir(), Path::new("/srv/debcache-ca"));
    assert!(messages(&loaded, Severity::Note)
        .iter()
        .all(|n| !n.contains("TlsInterceptCaDir is parsed but not in effect")));
}

#[test]
fn a_second_directory_is_read_after_the_first() {
    let acng = dir_with(&[("acng.conf", "CacheDir: /srv/c\nPort: 3150\n")]);
    let own = dir_with(&[("debcache.conf", "VerifyDownloads: 0\nPort: 3151\n")]);
    let dirs = [acng.path().to_path_buf(), own.path().to_path_buf()];
    let loaded = load_dirs(&dirs, &[]);
    assert!(!loaded.has_errors(), "{:?}", messages(&loaded, Severity::Error));
    let config = loaded.config.unwrap();
    assert_eq!(config.listen.port, 3151, "the later file wins");
    assert_eq!(config.storage.cache_dir, Path::new("/srv/c"));
    assert!(!config.maintenance.verify_downloads);
    assert_eq!(config.source.conf_files.len(), 2);
    assert_eq!(
        config.source.config_dir,
        ConfigDir::Path(fs::canonicalize(acng.path()).unwrap()),
        "lists and hooks come from the first"
    );
    let missing = [acng.path().to_path_buf(), acng.path().join("none")];
    let loaded = load_dirs(&missing, &[]);
    assert!(messages(&loaded, Severity::Error)[0].contains("none"));
}

#[test]
fn debcache_keys_are_found_where_apt_cacher_ng_would_refuse_them() {
    let dir = dir_with(&[
        ("acng.conf", "Port: 3142\n# VerifyDownloads: 1\n"),
        ("zz.conf", "CacheDir: /c\nverifydownloads: 0\nExpireSchedule: 0\n"),
    ]);
    let found = own_keys_in(dir.path()).unwrap();
    let names: Vec<(String, &str)> = found.iter().map(|(at, k)| (at.to_string(), *k)).collect();
    let file = dir.path().join("zz.conf");
    assert_eq!(
        names,
        [
            (format!("{}:2", file.display()), "VerifyDownloads"),
            (format!("{}:3", file.display()), "ExpireSchedule")
        ]
    );
}
