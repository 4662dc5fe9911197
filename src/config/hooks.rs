//! `<RepoName>.hooks` (spec §5.4): the shell commands run when a `Remap-`
//! repository's link to its mirrors goes up (`PreUp`, before its first
//! upstream connection) and down (`Down`, `DownTimeout` seconds after its
//! last one). The file has the .conf line syntax; keys are matched without
//! regard to case, as acng does. Read from the first configuration
//! directory only, like `file:` lists.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::diag::{Diagnostics, Location, Problem};
use super::files::ConfigDir;
use super::raw;

/// acng's default `DownTimeout`, in seconds.
const DOWN_TIMEOUT_DEFAULT: u64 = 30;
/// A day: longer than any link needs to stay up idle.
const DOWN_TIMEOUT_MAX: i64 = 86_400;

/// The keys of a hooks file, as written in messages.
const KEYS: [&str; 3] = ["PreUp", "Down", "DownTimeout"];

/// The hooks of one repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hooks {
    /// The file they were read from.
    pub file: Arc<Path>,
    /// Run (by `sh -c`) before the first upstream connection.
    pub pre_up: Option<String>,
    /// Run `down_timeout` after the last upstream connection ended.
    pub down: Option<String>,
    pub down_timeout: Duration,
}

impl Hooks {
    /// Neither command is set: nothing to run.
    pub fn is_empty(&self) -> bool {
        self.pre_up.is_none() && self.down.is_none()
    }
}

/// The hooks of repository `name`, when `<name>.hooks` is in `dir`. A file
/// that cannot be read is an error, as an unreadable .conf is.
pub fn read(dir: &ConfigDir, name: &str, diags: &mut Diagnostics) -> Option<Hooks> {
    let ConfigDir::Path(dir) = dir else {
        return None;
    };
    let path = dir.join(format!("{name}.hooks"));
    // `symlink_metadata`: a dangling link is found, and fails to read.
    std::fs::symlink_metadata(&path).ok()?;
    let file: Arc<Path> = Arc::from(path.as_path());
    match super::files::read_limited(&path) {
        Ok(text) => Some(parse(&text, &file, diags)),
        Err(source) => {
            diags.error(
                Location::File(Arc::clone(&file)),
                Problem::Unreadable { path, source },
            );
            None
        }
    }
}

/// Reads a hooks file's text; bad lines become diagnostics and the rest
/// still counts.
pub fn parse(text: &[u8], file: &Arc<Path>, diags: &mut Diagnostics) -> Hooks {
    let mut hooks = Hooks {
        file: Arc::clone(file),
        pre_up: None,
        down: None,
        down_timeout: Duration::from_secs(DOWN_TIMEOUT_DEFAULT),
    };
    let mut seen: [Option<Location>; 3] = Default::default();
    for a in raw::parse_file(text, file, diags) {
        let Some(index) = KEYS.iter().position(|k| k.eq_ignore_ascii_case(&a.key)) else {
            diags.push(unknown(&a.key, a.location));
            continue;
        };
        let key = KEYS[index];
        if let Some(previous) = seen[index].replace(a.location.clone()) {
            diags.warning(a.location.clone(), Problem::AlreadySet { key, previous });
        }
        let command = || Some(a.value.clone()).filter(|v| !v.is_empty());
        match index {
            0 => hooks.pre_up = command(),
            1 => hooks.down = command(),
            _ => match seconds(key, &a.value) {
                Ok(s) => hooks.down_timeout = s,
                Err(problem) => diags.error(a.location, problem),
            },
        }
    }
    hooks
}

/// A number of seconds in `0..=DOWN_TIMEOUT_MAX`.
fn seconds(key: &'static str, text: &str) -> Result<Duration, Problem> {
    let n = super::values::parse_int(key, text)?;
    if !(0..=DOWN_TIMEOUT_MAX).contains(&n) {
        return Err(Problem::OutOfRange {
            key,
            value: n,
            min: 0,
            max: DOWN_TIMEOUT_MAX,
        });
    }
    Ok(Duration::from_secs(n as u64))
}

/// A key within edit distance 2 of a known one is a typo that would leave
/// a hook unset: an error. Anything else is warned about and ignored.
fn unknown(key: &str, location: Location) -> super::Diagnostic {
    let lower = key.to_ascii_lowercase();
    let near = KEYS
        .iter()
        .find(|k| super::keys::edit_distance(&lower, &k.to_ascii_lowercase()) <= 2);
    match near {
        Some(known) => super::Diagnostic::error(
            location,
            Problem::NearMiss {
                key: key.to_string(),
                known,
            },
        ),
        None => super::Diagnostic::warning(location, Problem::UnknownHookKey { key: key.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Hooks, Vec<String>) {
        let file: Arc<Path> = Arc::from(Path::new("debrep.hooks"));
        let mut diags = Diagnostics::default();
        let hooks = parse(text.as_bytes(), &file, &mut diags);
        (hooks, diags.into_vec().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn commands_and_timeout_are_read_in_any_case() {
        let (hooks, diags) =
            parsed("# dial-up\npreup: /usr/sbin/pon provider\nDOWN=poff -a\nDownTimeout: 5\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(hooks.pre_up.as_deref(), Some("/usr/sbin/pon provider"));
        assert_eq!(hooks.down.as_deref(), Some("poff -a"));
        assert_eq!(hooks.down_timeout, Duration::from_secs(5));
    }

    #[test]
    fn the_timeout_defaults_to_acngs_and_empty_commands_are_none() {
        let (hooks, diags) = parsed("PreUp:\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert!(hooks.is_empty());
        assert_eq!(hooks.down_timeout, Duration::from_secs(30));
    }

    #[test]
    fn bad_lines_are_reported_with_their_line_and_the_rest_counts() {
        let (hooks, diags) = parsed(
            "PreUp: true\nnot a line\nDownTimeout: soon\nDownTimeout: -1\nFrobnicate: 1\nPreUpp: x\nDown: a\nDown: b\n",
        );
        assert_eq!(hooks.pre_up.as_deref(), Some("true"));
        assert_eq!(hooks.down.as_deref(), Some("b"));
        assert_eq!(hooks.down_timeout, Duration::from_secs(30));
        assert_eq!(
            diags,
            [
                "debrep.hooks:2: error: not a `Key: value` or `Key=value` line",
                "debrep.hooks:3: error: DownTimeout: `soon` is not a number",
                "debrep.hooks:4: warning: DownTimeout was already set at debrep.hooks:3; the later value wins",
                "debrep.hooks:4: error: DownTimeout: -1 is outside 0..=86400",
                "debrep.hooks:5: warning: unknown hooks key `Frobnicate` (known: PreUp, Down, DownTimeout), ignored",
                "debrep.hooks:6: error: unknown directive `PreUpp`; did you mean `PreUp`?",
                "debrep.hooks:8: warning: Down was already set at debrep.hooks:7; the later value wins",
            ]
        );
    }

    #[test]
    fn a_missing_file_is_no_hooks_and_an_unreadable_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = ConfigDir::Path(dir.path().to_path_buf());
        let mut diags = Diagnostics::default();
        assert_eq!(read(&config_dir, "debrep", &mut diags), None);
        assert_eq!(read(&ConfigDir::Embedded, "debrep", &mut diags), None);
        assert!(diags.into_vec().is_empty());
        std::fs::create_dir(dir.path().join("debrep.hooks")).unwrap();
        let mut diags = Diagnostics::default();
        assert_eq!(read(&config_dir, "debrep", &mut diags), None);
        let diags = diags.into_vec();
        assert!(
            diags[0].to_string().contains("debrep.hooks: error: cannot read"),
            "{diags:?}"
        );
    }
}
