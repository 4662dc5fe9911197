//! `printvar NAME` and `cfgdump`: settings' effective values, as
//! `--print-config` shows them (its masking, octal permissions, derived
//! defaults), in acngtool's forms.

use std::fmt::Write as _;

use crate::cli::{exit, stderr_line, to_stdout};
use crate::config::{self, Config, Lookup};

/// One value on a line of its own; exit 23 when `name` names no setting
/// that may be printed.
pub fn printvar(config: &Config, name: &str) -> u8 {
    match value(config, name) {
        Ok(value) => to_stdout(exit::OK, |out| writeln!(out, "{value}")),
        Err(why) => {
            stderr_line(format_args!("debcache: {why}"));
            exit::NO_SUCH_SETTING
        }
    }
}

/// Every setting, `Name = value`, in the order of `--print-config`.
pub fn cfgdump(config: &Config) -> u8 {
    let text = dump(config);
    to_stdout(exit::OK, |out| out.write_all(text.as_bytes()))
}

/// The value `printvar` prints, or why there is none. Names are matched
/// as the configuration files match them (any case, old spellings); like
/// acngtool, `AdminAuth` is not printed at all, and `Remap-…` lines and
/// deprecated names are not settings.
fn value<'c>(config: &'c Config, name: &str) -> Result<&'c str, String> {
    let directive = match config::lookup(name) {
        Lookup::Directive(d) | Lookup::Alias(d, _) => d,
        Lookup::Remap(_) => return Err(format!("`{name}` is a repository, not a setting")),
        Lookup::Deprecated(old, _) => return Err(format!("{old} is deprecated and has no value")),
        Lookup::Unknown(Some(near)) => return Err(format!("no setting `{name}`; did you mean `{near}`?")),
        Lookup::Unknown(None) => return Err(format!("no setting `{name}`")),
    };
    if directive.secret {
        return Err(format!("{} is never printed", directive.name));
    }
    config
        .source
        .effective
        .iter()
        .find(|(n, _)| *n == directive.name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| format!("no setting `{name}`"))
}

fn dump(config: &Config) -> String {
    let mut out = String::new();
    for (name, value) in &config.source.effective {
        let _ = writeln!(out, "{name} = {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, ConfigDir};

    fn config(overrides: &[&str]) -> Config {
        let words: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        load(ConfigDir::Embedded, &words).config.unwrap()
    }

    #[test]
    fn names_are_matched_like_the_files_match_them() {
        let c = config(&["Port=3143", "ExThreshold=4"]);
        assert_eq!(value(&c, "Port"), Ok("3143"));
        assert_eq!(value(&c, "PORT"), Ok("3143"));
        assert_eq!(value(&c, "ExTreshold"), Ok("4"), "acng's old spelling");
        assert_eq!(value(&c, "ReportPage"), Ok("acng-report.html"));
        assert_eq!(value(&c, "PidFile"), Ok(""));
    }

    #[test]
    fn the_report_page_prints_as_the_daemon_uses_it() {
        let c = config(&["ReportPage=/x.html"]);
        assert_eq!(value(&c, "ReportPage"), Ok("x.html"));
    }

    #[test]
    fn secrets_repositories_and_unknown_names_have_no_value() {
        let c = config(&["AdminAuth=admin:secret", "Proxy=http://u:pw@proxy:3128/"]);
        assert!(value(&c, "AdminAuth").unwrap_err().contains("never printed"));
        assert_eq!(value(&c, "Proxy"), Ok("http://u:***@proxy:3128/"));
        assert!(value(&c, "Remap-debrep").is_err());
        assert!(value(&c, "Verbose").is_err());
        assert!(value(&c, "Prot").unwrap_err().contains("did you mean `Port`"));
        assert!(value(&c, "NoSuchThing").is_err());
        assert!(value(&c, "").is_err());
    }

    #[test]
    fn the_dump_lists_every_setting_with_secrets_masked() {
        let c = config(&["AdminAuth=admin:secret", "Proxy=http://u:pw@proxy:3128/"]);
        let text = dump(&c);
        assert_eq!(text.lines().count(), c.source.effective.len());
        assert!(text.contains("\nAdminAuth = ********\n"), "{text}");
        assert!(text.contains("\nProxy = http://u:***@proxy:3128/\n"));
        assert!(text.contains("\nDirPerms = 0755\n"));
        assert!(!text.contains("secret") && !text.contains(":pw@"));
    }
}
