//! Assignments as read, before their values are checked: which directive each
//! key names, which value wins, which ones accumulate, and the `Remap-*` lines
//! in the order they were written.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::diag::{Diagnostics, Location, Problem};
use super::keys::{self, Directive, Lookup};
use super::raw::Assignment;

/// Where an assignment was read from, which decides how strict to be about
/// unknown keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    ConfFile,
    /// `security.conf`: an unknown key there is an error (Decisions table).
    SecurityConf,
    CommandLine,
}

/// The text of one directive and where it was set.
#[derive(Clone, Debug)]
pub struct Setting {
    pub value: String,
    pub location: Location,
}

/// One `Remap-NAME: value` line.
#[derive(Clone, Debug)]
pub struct RemapLine {
    pub name: String,
    pub value: String,
    pub location: Location,
}

/// Every assignment, reduced to the value that counts.
#[derive(Debug, Default)]
pub struct Store {
    settings: HashMap<&'static str, Setting>,
    /// Defaults that differ from the directive table (the embedded set).
    mode_defaults: HashMap<&'static str, String>,
    pub remap_lines: Vec<RemapLine>,
}

impl Store {
    pub fn new(mode_defaults: impl IntoIterator<Item = (&'static str, String)>) -> Store {
        Store {
            mode_defaults: mode_defaults.into_iter().collect(),
            ..Store::default()
        }
    }

    pub fn apply(&mut self, a: Assignment, origin: Origin, diags: &mut Diagnostics) {
        let directive = match keys::lookup(&a.key) {
            Lookup::Remap(name) if name.is_empty() => {
                return diags.error(a.location, Problem::EmptyRemapName)
            }
            Lookup::Remap(name) if !is_directory_name(&name) => {
                return diags.error(a.location, Problem::BadRemapName { name })
            }
            Lookup::Remap(name) => {
                return self.remap_lines.push(RemapLine {
                    name,
                    value: a.value,
                    location: a.location,
                })
            }
            Lookup::Directive(d) => d,
            Lookup::Alias(d, alias) => {
                diags.warning(
                    a.location.clone(),
                    Problem::Deprecated {
                        key: alias,
                        note: "an old spelling, read as the directive it names",
                    },
                );
                d
            }
            Lookup::Deprecated(key, note) => {
                return diags.warning(a.location, Problem::Deprecated { key, note })
            }
            Lookup::Unknown(near) => return unknown(a, origin, near, diags),
        };
        self.set(directive, a.value, a.location, diags);
    }

    fn set(
        &mut self,
        directive: &'static Directive,
        value: String,
        location: Location,
        diags: &mut Diagnostics,
    ) {
        match self.settings.get_mut(directive.name) {
            Some(prev) if directive.kind.accumulates() => {
                prev.value.push(if directive.kind == keys::Kind::LocalDirs {
                    ';'
                } else {
                    ' '
                });
                prev.value.push_str(&value);
            }
            Some(prev) => {
                if same_file(&prev.location, &location) {
                    diags.warning(
                        location.clone(),
                        Problem::AlreadySet {
                            key: directive.name,
                            previous: prev.location.clone(),
                        },
                    );
                }
                *prev = Setting { value, location };
            }
            None => {
                self.settings.insert(directive.name, Setting { value, location });
            }
        }
    }

    /// The assignment that set `name`, if any.
    #[cfg(test)]
    pub fn setting(&self, name: &str) -> Option<&Setting> {
        self.settings.get(name)
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.settings.contains_key(name)
    }

    /// The value that counts: the assignment, else this mode's default, else
    /// the table's default.
    pub fn value(&self, d: &'static Directive) -> (&str, Location) {
        if let Some(s) = self.settings.get(d.name) {
            return (&s.value, s.location.clone());
        }
        let default = self.mode_defaults.get(d.name).map_or(d.default, String::as_str);
        (default, Location::BuiltIn)
    }

    /// The value text of the directive called `name`.
    pub fn text(&self, key: keys::Key) -> &str {
        self.value(key.directive()).0
    }

    /// Directives set in files or on the command line, in table order.
    pub fn set_directives(&self) -> impl Iterator<Item = (&'static Directive, &Setting)> {
        keys::DIRECTIVES
            .iter()
            .filter_map(|d| self.settings.get(d.name).map(|s| (d, s)))
    }
}

fn unknown(a: Assignment, origin: Origin, near: Option<&'static str>, diags: &mut Diagnostics) {
    let key = a.key;
    match origin {
        Origin::CommandLine => diags.error(a.location, Problem::UnknownOverride { key }),
        Origin::SecurityConf => diags.error(a.location, Problem::UnknownSecurityKey { key }),
        Origin::ConfFile => match keys::unknown_key_problem(&key, near) {
            (true, problem) => diags.error(a.location, problem),
            (false, problem) => diags.warning(a.location, problem),
        },
    }
}

/// acng warns about a repeated key only within one file: overriding a value
/// in a later file (`local.conf`) is the documented way to customise.
fn same_file(a: &Location, b: &Location) -> bool {
    fn file(l: &Location) -> Option<&Arc<Path>> {
        match l {
            Location::Line { file, .. } | Location::File(file) => Some(file),
            _ => None,
        }
    }
    matches!((file(a), file(b)), (Some(x), Some(y)) if x == y)
}

/// A repository's name is its top-level cache directory (spec §6.1): one
/// path component, neither `.` nor `..`, not reserved (`_`, spec §6.4),
/// without control characters, within `NAME_MAX`.
fn is_directory_name(name: &str) -> bool {
    name != "."
        && name != ".."
        && !name.starts_with('_')
        && name.len() <= 255
        && !name.chars().any(|c| c == '/' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diag::Severity;

    fn assignment(key: &str, value: &str, file: &Arc<Path>, line: usize) -> Assignment {
        Assignment {
            key: key.into(),
            value: value.into(),
            location: Location::line(file, line),
        }
    }

    fn store_with(lines: &[(&str, &str)], origin: Origin) -> (Store, Vec<(Severity, String)>) {
        let file: Arc<Path> = Arc::from(Path::new("a.conf"));
        let mut store = Store::default();
        let mut diags = Diagnostics::default();
        for (i, (k, v)) in lines.iter().enumerate() {
            store.apply(assignment(k, v, &file, i + 1), origin, &mut diags);
        }
        let diags = diags
            .into_vec()
            .into_iter()
            .map(|d| (d.severity, d.to_string()))
            .collect();
        (store, diags)
    }

    #[test]
    fn later_value_wins_with_a_warning_in_the_same_file() {
        let (store, diags) = store_with(&[("Port", "1"), ("port", "2")], Origin::ConfFile);
        assert_eq!(store.setting("Port").unwrap().value, "2");
        assert_eq!(
            diags,
            [(
                Severity::Warning,
                "a.conf:2: warning: Port was already set at a.conf:1; the later value wins".into()
            )]
        );
    }

    #[test]
    fn a_later_file_overrides_silently() {
        let a: Arc<Path> = Arc::from(Path::new("a.conf"));
        let b: Arc<Path> = Arc::from(Path::new("b.conf"));
        let mut store = Store::default();
        let mut diags = Diagnostics::default();
        store.apply(assignment("Port", "1", &a, 1), Origin::ConfFile, &mut diags);
        store.apply(assignment("Port", "2", &b, 1), Origin::ConfFile, &mut diags);
        assert_eq!(store.setting("Port").unwrap().value, "2");
        assert!(diags.into_vec().is_empty());
    }

    #[test]
    fn ports_and_local_dirs_accumulate() {
        let (store, diags) = store_with(
            &[
                ("AllowUserPorts", "80"),
                ("AllowUserPorts", "443 8080"),
                ("LocalDirs", "a /x"),
                ("LocalDirs", "b /y"),
            ],
            Origin::ConfFile,
        );
        assert_eq!(store.setting("AllowUserPorts").unwrap().value, "80 443 8080");
        assert_eq!(store.setting("LocalDirs").unwrap().value, "a /x;b /y");
        assert!(diags.is_empty());
    }

    #[test]
    fn remap_lines_keep_their_order_and_names() {
        let (store, _) = store_with(
            &[("Remap-b", "x"), ("remap-a", "y"), ("Remap-b", "z")],
            Origin::ConfFile,
        );
        let names: Vec<_> = store
            .remap_lines
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(names, [("b", "x"), ("a", "y"), ("b", "z")]);
    }

    #[test]
    fn unknown_keys_warn_but_near_misses_fail() {
        let (_, diags) = store_with(&[("Frobnicate", "1"), ("Prot", "1")], Origin::ConfFile);
        assert_eq!(
            diags[0],
            (
                Severity::Warning,
                "a.conf:1: warning: unknown directive `Frobnicate`, ignored".into()
            )
        );
        assert_eq!(
            diags[1],
            (
                Severity::Error,
                "a.conf:2: error: unknown directive `Prot`; did you mean `Port`?".into()
            )
        );
    }

    #[test]
    fn unknown_keys_in_security_conf_and_on_the_command_line_fail() {
        let (_, diags) = store_with(&[("Frobnicate", "1")], Origin::SecurityConf);
        assert_eq!(diags[0].0, Severity::Error);
        let (_, diags) = store_with(&[("Frobnicate", "1")], Origin::CommandLine);
        assert_eq!(diags[0].0, Severity::Error);
    }

    #[test]
    fn remap_name_that_is_no_cache_directory_is_an_error() {
        // Found by fuzzing: `Remap-de\0brep` loaded, and every request for
        // that repository failed later as an invalid cache key.
        for name in ["de\0brep", "a/b", "..", ".", "_xstore", "tab\there"] {
            let (store, diags) = store_with(&[(&format!("Remap-{name}"), "x")], Origin::ConfFile);
            assert!(store.remap_lines.is_empty(), "{name:?}");
            assert_eq!(diags[0].0, Severity::Error, "{name:?}");
        }
        let (store, diags) = store_with(&[("Remap-deb.rep-2", "x")], Origin::ConfFile);
        assert_eq!((store.remap_lines.len(), diags.len()), (1, 0));
    }

    #[test]
    fn empty_remap_name_is_an_error() {
        let (store, diags) = store_with(&[("Remap-", "x")], Origin::ConfFile);
        assert!(store.remap_lines.is_empty());
        assert_eq!(diags[0].0, Severity::Error);
    }

    #[test]
    fn deprecated_keys_warn_and_aliases_apply() {
        let (store, diags) = store_with(&[("Verbose", "1"), ("ExTreshold", "4")], Origin::ConfFile);
        assert_eq!(store.setting("ExThreshold").unwrap().value, "4");
        assert!(diags.iter().all(|(s, _)| *s == Severity::Warning));
        assert_eq!(diags.len(), 2);
    }

    #[test]
    fn mode_defaults_replace_table_defaults() {
        let store = Store::new([("LogDir", String::new())]);
        let log_dir = keys::directive("LogDir").unwrap();
        assert_eq!(store.value(log_dir).0, "");
        let cache_dir = keys::directive("CacheDir").unwrap();
        assert_eq!(store.value(cache_dir).0, "/var/cache/apt-cacher-ng");
    }
}
