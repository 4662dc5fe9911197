//! Which compression an index file's name says, by the suffixes apt
//! uses. Apart from the decoders, so that the errors can name a
//! compression without the two depending on each other.

use std::fmt;

/// How an index file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Plain,
    Gzip,
    Bzip2,
    Xz,
    Lzma,
    Zstd,
}

/// Suffixes apt uses, with what debcache does with them.
const SUFFIXES: [(&str, Option<Compression>); 6] = [
    (".gz", Some(Compression::Gzip)),
    (".bz2", Some(Compression::Bzip2)),
    (".xz", Some(Compression::Xz)),
    (".lzma", Some(Compression::Lzma)),
    (".zst", Some(Compression::Zstd)),
    (".lz4", None),
];

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Plain => "plain",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Zstd => "zstd",
        })
    }
}

/// `name` without a compression suffix apt knows (`Packages.xz` →
/// `Packages`), and the suffix.
pub(super) fn split_suffix(name: &str) -> (&str, Option<(&'static str, Option<Compression>)>) {
    for (suffix, compression) in SUFFIXES {
        if let Some(stem) = name.strip_suffix(suffix) {
            return (stem, Some((suffix, compression)));
        }
    }
    (name, None)
}
