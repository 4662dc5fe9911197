//! `debcache migrate [--from DIR] [--apply] [--root DIR]`: debcache on an
//! apt-cacher-ng installation's configuration and cache, in place (the
//! cache is read as acng wrote it). First the checks: the configuration as
//! the daemon reads it, debcache's own keys in acng's files (acng refuses
//! to start on them), who owns the cache and the logs. Then the plan: a
//! systemd drop-in running the packaged unit as the cache's owner on acng's
//! directory, a directory of debcache's own settings read after it, the
//! commands that stop apt-cacher-ng and its cron job and start debcache,
//! and those that go back. Without `--apply` it only prints them.
//!
//! Nothing is written into acng's directories: going back is removing the
//! drop-in and starting apt-cacher-ng again.

use std::ffi::CStr;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::{exit, stderr_line, to_stdout};
use crate::config::{self, Config, ConfigDir, Severity};

/// The overflow user, `nobody` on Debian, which systemd warns of as a
/// service's `User=`.
const NOBODY: u32 = 65534;

/// The drop-in, relative to the root.
const DROP_IN: &str = "etc/systemd/system/debcache.service.d/apt-cacher-ng.conf";
/// debcache's own settings when it runs on acng's directory.
const OWN_DIR: &str = "etc/debcache/on-apt-cacher-ng";
const OWN_FILE: &str = "debcache.conf";
/// Debian's daily job, which runs `acngtool maint` against the port.
const CRON: &str = "/etc/cron.daily/apt-cacher-ng";
/// Files of the cache's top level looked at for their owner: enough to
/// see a cache that changed hands, without walking all of it.
const OWNERS_SAMPLED: usize = 1000;

#[derive(Debug)]
pub struct Options {
    pub from: PathBuf,
    pub apply: bool,
    /// Write under this directory instead of `/`, and run no command.
    pub root: Option<PathBuf>,
}

/// What the checks found.
#[derive(Debug, Default)]
struct Findings {
    lines: Vec<(Verdict, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Ok,
    Warning,
    /// Blocks the migration.
    Problem,
}

impl Findings {
    fn add(&mut self, verdict: Verdict, text: impl Into<String>) {
        self.lines.push((verdict, text.into()));
    }

    fn blocked(&self) -> bool {
        self.lines.iter().any(|(v, _)| *v == Verdict::Problem)
    }
}

/// Who the daemon runs as: the cache's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    uid: u32,
    user: String,
    group: String,
}

/// The files to write and the commands to run.
#[derive(Debug)]
struct Plan {
    files: Vec<(PathBuf, String)>,
    steps: Vec<Vec<String>>,
    back: Vec<String>,
}

pub fn run(options: &Options) -> u8 {
    let from = match fs::canonicalize(&options.from) {
        Ok(dir) => dir,
        Err(e) => {
            stderr_line(format_args!(
                "debcache migrate: {}: {e}: no apt-cacher-ng configuration there",
                options.from.display()
            ));
            return exit::CONFIG;
        }
    };
    let mut findings = Findings::default();
    let loaded = config::load(ConfigDir::Path(from.clone()), &[]);
    let config = match loaded.config {
        Some(config) if !loaded.has_errors() => config,
        _ => {
            for d in loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
            {
                stderr_line(format_args!("{d}"));
            }
            stderr_line(format_args!(
                "debcache migrate: {} has errors as debcache reads it; nothing was changed",
                from.display()
            ));
            return exit::CONFIG;
        }
    };
    let warnings = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    findings.add(
        Verdict::Ok,
        format!(
            "the configuration loads as debcache reads it ({warnings} warning(s): debcache --check -c {})",
            from.display()
        ),
    );
    check_own_keys(&from, &mut findings);
    let account = check_cache(&config.storage.cache_dir, &mut findings);
    if let (Some(dir), Some(account)) = (&config.log.log_dir, &account) {
        check_log_dir(dir, account, &mut findings);
    }
    let cron = is_executable(Path::new(CRON));
    let plan = account.map(|account| plan(&from, &config, &account, cron));
    let root = options.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let printed = to_stdout(exit::OK, |out| {
        out.write_all(render(&from, &findings, plan.as_ref(), &root, options).as_bytes())
    });
    if printed != exit::OK {
        return printed;
    }
    let Some(plan) = plan.filter(|_| !findings.blocked()) else {
        return exit::CONFIG;
    };
    if !options.apply {
        return exit::OK;
    }
    apply(&plan, options.root.as_deref())
}

/// debcache's own keys in acng's files: acng would not start again.
fn check_own_keys(from: &Path, findings: &mut Findings) {
    match config::own_keys_in(from) {
        Ok(found) if found.is_empty() => findings.add(Verdict::Ok, "no debcache-only setting in its files"),
        Ok(found) => {
            for (at, key) in found {
                findings.add(
                    Verdict::Problem,
                    format!(
                        "{at}: {key} is debcache's own, and apt-cacher-ng refuses to start on it: \
                         move it to /{OWN_DIR}/{OWN_FILE}"
                    ),
                );
            }
        }
        Err(e) => findings.add(Verdict::Problem, format!("cannot read {}: {e}", from.display())),
    }
}

/// The cache's owner, whom the daemon will run as.
fn check_cache(dir: &Path, findings: &mut Findings) -> Option<Account> {
    let meta = match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => {
            findings.add(
                Verdict::Problem,
                format!("CacheDir {} is not a directory", dir.display()),
            );
            return None;
        }
        Err(e) => {
            findings.add(Verdict::Problem, format!("CacheDir {}: {e}", dir.display()));
            return None;
        }
    };
    let account = Account {
        uid: meta.uid(),
        user: user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string()),
        group: group_name(meta.gid()).unwrap_or_else(|| meta.gid().to_string()),
    };
    findings.add(
        Verdict::Ok,
        format!(
            "cache {}, owned by {}:{}: debcache will run as that user",
            dir.display(),
            account.user,
            account.group
        ),
    );
    if account.uid == 0 {
        findings.add(
            Verdict::Warning,
            "the cache is owned by root: debcache would run as root (with no capabilities); \
             apt-cacher-ng's package runs as apt-cacher-ng (chown -R it first)",
        );
    }
    if account.uid == NOBODY || account.user == "nobody" {
        findings.add(
            Verdict::Warning,
            "the cache is owned by nobody: systemd warns that a service running as nobody is \
             not safe (every process of that user could reach its files); give the cache a \
             user of its own (chown -R it first)",
        );
    }
    let foreign: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .take(OWNERS_SAMPLED)
                .filter_map(Result::ok)
                .filter(|e| e.metadata().is_ok_and(|m| m.uid() != account.uid))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if !foreign.is_empty() {
        let named: Vec<&str> = foreign.iter().take(3).map(String::as_str).collect();
        let more = if foreign.len() > named.len() { ", …" } else { "" };
        findings.add(
            Verdict::Warning,
            format!(
                "{} of the entries at the top of {} belong to another user ({}{more}): \
                 debcache cannot replace what is in them unless it may write there",
                foreign.len(),
                dir.display(),
                named.join(", ")
            ),
        );
    }
    Some(account)
}

fn check_log_dir(dir: &Path, account: &Account, findings: &mut Findings) {
    match fs::metadata(dir) {
        Ok(meta) if meta.uid() == account.uid => findings.add(
            Verdict::Ok,
            format!("logs in {}, owned by {}", dir.display(), account.user),
        ),
        Ok(meta) => findings.add(
            Verdict::Warning,
            format!(
                "LogDir {} belongs to {}, not {}: the transfer log may not be writable",
                dir.display(),
                user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string()),
                account.user
            ),
        ),
        Err(e) => findings.add(Verdict::Warning, format!("LogDir {}: {e}", dir.display())),
    }
}

fn plan(from: &Path, config: &Config, account: &Account, cron: bool) -> Plan {
    let own_dir = Path::new("/").join(OWN_DIR);
    let binary = std::env::current_exe()
        .ok()
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/debcache"));
    let mut writable = vec![config.storage.cache_dir.clone()];
    writable.extend(config.log.log_dir.clone());
    // A socket or pid file under /run/NAME: the unit makes that directory,
    // owned by the user, as acng's init script does.
    let runtime = [&config.listen.socket_path, &config.listen.pid_file]
        .into_iter()
        .flatten()
        .filter_map(|p| runtime_name(p))
        .next();
    for path in [&config.listen.socket_path, &config.listen.pid_file]
        .into_iter()
        .flatten()
    {
        if runtime_name(path).is_none() {
            writable.extend(path.parent().map(Path::to_path_buf));
        }
    }
    writable.dedup();
    let mut unit = format!(
        "# Written by `debcache migrate --from {from}`: debcache serves apt-cacher-ng's\n\
         # configuration and cache in place, as their owner. Remove this file and\n\
         # run `systemctl daemon-reload` to go back to debcache's own.\n\
         [Service]\n\
         User={user}\n\
         Group={group}\n\
         ExecStart=\n\
         ExecStart={binary} -c {from} -c {own}\n\
         # Not debcache's own directories: those stay as the package left them.\n\
         CacheDirectory=\n\
         LogsDirectory=\n\
         RuntimeDirectory=\n",
        from = from.display(),
        user = account.user,
        group = account.group,
        binary = binary.display(),
        own = own_dir.display(),
    );
    if let Some(name) = &runtime {
        let _ = writeln!(unit, "RuntimeDirectory={name}");
    }
    let paths: Vec<String> = writable.iter().map(|p| p.display().to_string()).collect();
    let _ = writeln!(unit, "ReadWritePaths={}", paths.join(" "));
    let own = format!(
        "# debcache's own settings while it serves {from}: read after that\n\
         # directory's files. They never go there: apt-cacher-ng refuses to start\n\
         # on keys it does not know. For example:\n\
         # CacheSizeLimit: 50G\n\
         # VerifyDownloads: 1\n\
         # ExpireSchedule: 03:40\n",
        from = from.display()
    );
    let cmd = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let mut steps = vec![
        cmd(&["systemctl", "daemon-reload"]),
        cmd(&["systemctl", "disable", "--now", "apt-cacher-ng.service"]),
    ];
    if cron {
        // debcache expires on its own schedule (ExpireSchedule).
        steps.push(cmd(&["chmod", "a-x", CRON]));
    }
    steps.extend([
        // The service binds acng's port and socket itself.
        cmd(&["systemctl", "disable", "--now", "debcache.socket"]),
        cmd(&["systemctl", "enable", "debcache.service"]),
        cmd(&["systemctl", "restart", "debcache.service"]),
    ]);
    let mut back = vec![
        "systemctl disable --now debcache.service".to_string(),
        format!("rm /{DROP_IN}"),
        "systemctl daemon-reload".to_string(),
    ];
    if cron {
        back.push(format!("chmod a+x {CRON}"));
    }
    back.push("systemctl enable --now apt-cacher-ng.service".to_string());
    Plan {
        files: vec![
            (PathBuf::from(DROP_IN), unit),
            (Path::new(OWN_DIR).join(OWN_FILE), own),
        ],
        steps,
        back,
    }
}

/// `NAME` of `/run/NAME/...` or `/var/run/NAME/...`.
fn runtime_name(path: &Path) -> Option<String> {
    let rest = path
        .strip_prefix("/run")
        .or_else(|_| path.strip_prefix("/var/run"))
        .ok()?;
    let mut parts = rest.components();
    let name = parts.next()?.as_os_str().to_str()?.to_string();
    parts.next().map(|_| name)
}

fn render(from: &Path, findings: &Findings, plan: Option<&Plan>, root: &Path, options: &Options) -> String {
    let mut out = format!("Checked {}:\n", from.display());
    for (verdict, text) in &findings.lines {
        let label = match verdict {
            Verdict::Ok => "ok",
            Verdict::Warning => "warning",
            Verdict::Problem => "problem",
        };
        let _ = writeln!(out, "  {label:<8} {text}");
    }
    let Some(plan) = plan else {
        out.push_str("\nNo plan: the cache directory is needed to know whom debcache runs as.\n");
        return out;
    };
    out.push_str("\nFiles to write:\n");
    for (path, text) in &plan.files {
        let _ = writeln!(out, "  {}", root.join(path).display());
        for line in text.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out.push_str("\nSteps:\n");
    for step in &plan.steps {
        let _ = writeln!(out, "  {}", step.join(" "));
    }
    out.push_str("\nTo go back:\n");
    for line in &plan.back {
        let _ = writeln!(out, "  {line}");
    }
    out.push('\n');
    out.push_str(if findings.blocked() {
        "Nothing was changed: solve the problems above first.\n"
    } else if options.apply {
        "Applying.\n"
    } else {
        "Nothing was changed: add --apply (as root) to take these steps.\n"
    });
    out
}

/// Writes the files, then runs the steps (only on the real root, with
/// systemd running; otherwise says what is left to do).
fn apply(plan: &Plan, root: Option<&Path>) -> u8 {
    let on_system = root.is_none();
    if on_system && !rustix::process::geteuid().is_root() {
        stderr_line(format_args!("debcache migrate --apply: run it as root"));
        return exit::CONFIG;
    }
    let root = root.unwrap_or(Path::new("/"));
    for (path, text) in &plan.files {
        let target = root.join(path);
        let own_settings = path.starts_with(OWN_DIR);
        match write_file(&target, text, own_settings) {
            Ok(true) => stderr_line(format_args!("wrote {}", target.display())),
            Ok(false) => stderr_line(format_args!("kept {} as it is", target.display())),
            Err(e) => {
                stderr_line(format_args!(
                    "debcache migrate: cannot write {}: {e}",
                    target.display()
                ));
                return exit::MAINT_FAILED;
            }
        }
    }
    if !on_system {
        stderr_line(format_args!(
            "files written under {}; run the steps on the system itself",
            root.display()
        ));
        return exit::OK;
    }
    if !Path::new("/run/systemd/system").is_dir() {
        stderr_line(format_args!(
            "systemd is not running here: stop apt-cacher-ng and start debcache as the drop-in says"
        ));
        return exit::OK;
    }
    for step in &plan.steps {
        stderr_line(format_args!("running: {}", step.join(" ")));
        let status = Command::new(&step[0]).args(&step[1..]).status();
        match status {
            Ok(s) if s.success() => {}
            // Not installed as a unit (started some other way): nothing to
            // stop, go on.
            Ok(_) if step.iter().any(|w| w == "apt-cacher-ng.service") => stderr_line(format_args!(
                "(apt-cacher-ng.service could not be stopped; go on)"
            )),
            Ok(s) => {
                stderr_line(format_args!("debcache migrate: `{}` failed: {s}", step.join(" ")));
                return exit::MAINT_FAILED;
            }
            Err(e) => {
                stderr_line(format_args!(
                    "debcache migrate: cannot run `{}`: {e}",
                    step.join(" ")
                ));
                return exit::MAINT_FAILED;
            }
        }
    }
    exit::OK
}

/// Writes `text` at `path` through a temporary file and a rename;
/// `Ok(false)` when `keep_existing` and the file is there (the admin's
/// settings are never overwritten).
fn write_file(path: &Path, text: &str, keep_existing: bool) -> io::Result<bool> {
    if keep_existing && path.exists() {
        return Ok(false);
    }
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    fs::create_dir_all(dir)?;
    let temp = dir.join(format!(
        ".{}.new",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    fs::write(&temp, text)?;
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o644))?;
    fs::rename(&temp, path)?;
    Ok(true)
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf` for its length.
    let rc = unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string in `buf`,
    // which is still alive.
    Some(
        unsafe { CStr::from_ptr(entry.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero group is a valid value for getgrgid_r to fill.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf` for its length.
    let rc = unsafe { libc::getgrgid_r(gid, &mut entry, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || entry.gr_name.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points to a NUL-terminated string in `buf`,
    // which is still alive.
    Some(
        unsafe { CStr::from_ptr(entry.gr_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_directory_is_the_first_component_under_run() {
        assert_eq!(
            runtime_name(Path::new("/var/run/apt-cacher-ng/socket")),
            Some("apt-cacher-ng".into())
        );
        assert_eq!(runtime_name(Path::new("/run/acng/pid")), Some("acng".into()));
        assert_eq!(runtime_name(Path::new("/run/socket")), None, "directly in /run");
        assert_eq!(runtime_name(Path::new("/srv/acng/socket")), None);
    }

    #[test]
    fn root_and_its_group_have_names() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
    }
}
