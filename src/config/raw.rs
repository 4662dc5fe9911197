//! The acng.conf line syntax (spec §7.1), before any key is looked up:
//! `#` starts a comment anywhere on a line, a line is `key: value` or
//! `key=value` split at whichever separator comes first, both sides trimmed,
//! no continuation lines. Every assignment keeps its `file:line`.

use std::path::Path;
use std::sync::Arc;

use super::diag::{Diagnostics, Location, Problem};

/// One `key: value` assignment and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub key: String,
    pub value: String,
    pub location: Location,
}

/// Reads every assignment of a configuration file. Bad lines become
/// diagnostics; reading goes on so every problem is reported at once.
pub fn parse_file(text: &[u8], file: &Arc<Path>, diags: &mut Diagnostics) -> Vec<Assignment> {
    let mut out = Vec::new();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let location = Location::line(file, index + 1);
        let Ok(line) = std::str::from_utf8(raw) else {
            diags.error(location, Problem::NotUtf8);
            continue;
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.split('#').next().unwrap_or_default();
        if let Some(a) = split_assignment(line, location, diags) {
            out.push(a);
        }
    }
    out
}

/// Reads one `KEY=VALUE` or `KEY:VALUE` word of the command line. Unlike file
/// lines, `#` is kept: a shell word has no comments.
pub fn parse_word(word: &str, index: usize, diags: &mut Diagnostics) -> Option<Assignment> {
    split_assignment(word, Location::CommandLine(index), diags)
}

fn split_assignment(line: &str, location: Location, diags: &mut Diagnostics) -> Option<Assignment> {
    let Some(sep) = line.find([':', '=']) else {
        diags.error(location, Problem::NotAnAssignment);
        return None;
    };
    let key = line[..sep].trim();
    let value = line[sep + 1..].trim();
    if key.is_empty() {
        diags.error(location, Problem::EmptyKey);
        return None;
    }
    if value.ends_with('\\') {
        diags.warning(location.clone(), Problem::ContinuationLine);
    }
    Some(Assignment {
        key: key.to_string(),
        value: value.to_string(),
        location,
    })
}

/// The words of a list value: separated by white space or commas.
pub(super) fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diag::Severity;

    fn parse(text: &str) -> (Vec<(String, String, usize)>, Vec<String>) {
        let file: Arc<Path> = Arc::from(Path::new("t.conf"));
        let mut diags = Diagnostics::default();
        let got = parse_file(text.as_bytes(), &file, &mut diags)
            .into_iter()
            .map(|a| match a.location {
                Location::Line { line, .. } => (a.key, a.value, line),
                other => panic!("unexpected location {other}"),
            })
            .collect();
        (got, diags.into_vec().iter().map(ToString::to_string).collect())
    }

    fn kv(k: &str, v: &str, line: usize) -> (String, String, usize) {
        (k.into(), v.into(), line)
    }

    #[test]
    fn colon_and_equals_both_assign() {
        let (got, diags) = parse("Port: 3142\nCacheDir=/var/cache/x\n");
        assert_eq!(
            got,
            vec![kv("Port", "3142", 1), kv("CacheDir", "/var/cache/x", 2)]
        );
        assert!(diags.is_empty());
    }

    #[test]
    fn first_separator_wins() {
        let (got, _) = parse("Proxy: http://p:3128/\nDontCache=a:b\n");
        assert_eq!(
            got,
            vec![kv("Proxy", "http://p:3128/", 1), kv("DontCache", "a:b", 2)]
        );
    }

    #[test]
    fn hash_cuts_the_line_anywhere() {
        let (got, _) = parse("  # comment\nReportPage: acng-report.html # the page\n#Port: 1\n");
        assert_eq!(got, vec![kv("ReportPage", "acng-report.html", 2)]);
    }

    #[test]
    fn keys_and_values_are_trimmed_and_crlf_tolerated() {
        let (got, _) = parse("\t Port \t:\t 3142 \r\n");
        assert_eq!(got, vec![kv("Port", "3142", 1)]);
    }

    #[test]
    fn empty_value_is_kept_for_the_key_to_judge() {
        let (got, _) = parse("LogDir:\n");
        assert_eq!(got, vec![kv("LogDir", "", 1)]);
    }

    #[test]
    fn line_without_separator_is_an_error_with_its_line() {
        let (got, diags) = parse("Port: 1\nthis is not an assignment\n");
        assert_eq!(got.len(), 1);
        assert_eq!(
            diags,
            vec!["t.conf:2: error: not a `Key: value` or `Key=value` line"]
        );
    }

    #[test]
    fn missing_key_is_an_error() {
        let (_, diags) = parse(": value\n");
        assert_eq!(diags, vec!["t.conf:1: error: a value without a key"]);
    }

    #[test]
    fn trailing_backslash_warns_that_lines_do_not_continue() {
        let (got, diags) = parse("DontCache: a \\\nb\n");
        assert_eq!(got[0].1, "a \\");
        assert!(diags[0].starts_with("t.conf:1: warning:"), "{diags:?}");
        assert!(diags[1].starts_with("t.conf:2: error:"), "{diags:?}");
    }

    #[test]
    fn invalid_utf8_is_reported_not_fatal_to_the_rest() {
        let file: Arc<Path> = Arc::from(Path::new("t.conf"));
        let mut diags = Diagnostics::default();
        let got = parse_file(b"A: \xff\nPort: 1\n", &file, &mut diags);
        assert_eq!(got.len(), 1);
        let d = diags.into_vec();
        assert_eq!(
            (d[0].severity, d[0].to_string()),
            (Severity::Error, "t.conf:1: error: line is not valid UTF-8".into())
        );
    }

    #[test]
    fn command_line_words_keep_hash_and_name_their_position() {
        let mut diags = Diagnostics::default();
        let a = parse_word("UserAgent=x#y", 3, &mut diags).unwrap();
        assert_eq!((a.key.as_str(), a.value.as_str()), ("UserAgent", "x#y"));
        assert_eq!(a.location.to_string(), "command line:3");
        assert!(parse_word("novalue", 1, &mut diags).is_none());
        assert_eq!(
            diags.into_vec()[0].to_string(),
            "command line:1: error: not a `Key: value` or `Key=value` line"
        );
    }
}
