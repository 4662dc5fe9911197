//! `retest PATH`: how the daemon would keep a file, by the classifier it
//! uses (`request::kind`) on the configuration's patterns. The text is
//! matched as given, as acngtool does: a URL path, a cache path or a whole
//! URL.

use crate::cli::{exit, to_stdout};
use crate::config::Config;
use crate::request::kind::{classify, FileKind};

pub fn run(config: &Config, path: &str) -> u8 {
    let verdict = verdict(classify(path, &config.requests.file_patterns));
    to_stdout(exit::OK, |out| writeln!(out, "{verdict}"))
}

/// acngtool's words; its special classes print as the plain ones.
fn verdict(kind: Option<FileKind>) -> &'static str {
    match kind {
        Some(FileKind::Solid) => "FILE_SOLID",
        Some(FileKind::Volatile) => "FILE_VOLATILE",
        None => "NOMATCH",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, ConfigDir};

    #[test]
    fn words_are_acngtools() {
        let config = load(ConfigDir::Embedded, &[]).config.unwrap();
        let of = |path: &str| verdict(classify(path, &config.requests.file_patterns));
        assert_eq!(
            of("/debian/pool/main/h/hello/hello_2.10-3_amd64.deb"),
            "FILE_SOLID"
        );
        assert_eq!(of("http://deb.debian.org/debian/pool/a.deb"), "FILE_SOLID");
        assert_eq!(of("/debian/dists/sid/InRelease"), "FILE_VOLATILE");
        assert_eq!(of("InRelease"), "FILE_VOLATILE");
        assert_eq!(of("/x/a.deb.gpg"), "FILE_VOLATILE");
        assert_eq!(of("garbage"), "NOMATCH");
        assert_eq!(of(""), "NOMATCH");
    }
}
