//! Where configuration text comes from: a configuration directory on disk, or
//! the one compiled into the binary from `conf/` (the embedded defaults).
//! Lookups by glob, size-limited reads, transparent decompression of lists.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// No configuration or list file is larger than this; the biggest real list
/// (Debian's mirror master list) is under 1 MiB.
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// The files of `conf/`, compiled in.
static EMBEDDED: &[(&str, &[u8])] = &[
    ("acng.conf", include_bytes!("../../conf/acng.conf")),
    ("security.conf", include_bytes!("../../conf/security.conf")),
    (
        "backends_debian.default",
        include_bytes!("../../conf/backends_debian.default"),
    ),
    (
        "backends_ubuntu.default",
        include_bytes!("../../conf/backends_ubuntu.default"),
    ),
    (
        "backends_gentoo.default",
        include_bytes!("../../conf/backends_gentoo.default"),
    ),
    (
        "backends_kali.default",
        include_bytes!("../../conf/backends_kali.default"),
    ),
    ("deb_mirrors.gz", include_bytes!("../../conf/deb_mirrors.gz")),
    (
        "debvol_mirrors.gz",
        include_bytes!("../../conf/debvol_mirrors.gz"),
    ),
    ("ubuntu_mirrors", include_bytes!("../../conf/ubuntu_mirrors")),
    ("kali_mirrors", include_bytes!("../../conf/kali_mirrors")),
    ("cygwin_mirrors", include_bytes!("../../conf/cygwin_mirrors")),
    ("sfnet_mirrors", include_bytes!("../../conf/sfnet_mirrors")),
    ("archlx_mirrors", include_bytes!("../../conf/archlx_mirrors")),
    ("fedora_mirrors", include_bytes!("../../conf/fedora_mirrors")),
    ("epel_mirrors", include_bytes!("../../conf/epel_mirrors")),
    ("sl_mirrors", include_bytes!("../../conf/sl_mirrors")),
    (
        "gentoo_mirrors.gz",
        include_bytes!("../../conf/gentoo_mirrors.gz"),
    ),
];

/// How embedded files are named in messages.
const EMBEDDED_PREFIX: &str = "debcache:conf";

/// The directory the `*.conf` files are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigDir {
    /// `-c DIR`, or `/etc/debcache` when it exists.
    Path(PathBuf),
    /// No configuration directory: `conf/` as compiled in.
    Embedded,
}

/// A file found by a lookup, with its content or why it could not be read.
#[derive(Debug)]
pub struct Found {
    pub path: Arc<Path>,
    pub content: io::Result<Vec<u8>>,
}

impl ConfigDir {
    /// The `*.conf` files in alphabetical order (acng's glob order).
    pub fn conf_files(&self) -> io::Result<Vec<Found>> {
        match self {
            ConfigDir::Path(dir) => {
                let mut found = glob_dir(dir, "*.conf")?;
                found.retain(|f| !f.path.is_dir());
                Ok(found)
            }
            ConfigDir::Embedded => Ok(glob_embedded("*.conf")),
        }
    }

    /// Files whose name matches `pattern` (wildcards in the last component).
    pub fn glob(&self, pattern: &str) -> Vec<Found> {
        match self {
            ConfigDir::Path(dir) => glob_relative(dir, pattern),
            ConfigDir::Embedded => glob_embedded(pattern),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ConfigDir::Path(dir) => dir.display().to_string(),
            ConfigDir::Embedded => EMBEDDED_PREFIX.to_string(),
        }
    }
}

/// Matches a pattern against the compiled-in files. Only the last path
/// component counts: the embedded set is flat.
pub fn glob_embedded(pattern: &str) -> Vec<Found> {
    let name_pattern = pattern.rsplit('/').next().unwrap_or(pattern);
    let Ok(matcher) = glob::Pattern::new(name_pattern) else {
        return Vec::new();
    };
    EMBEDDED
        .iter()
        .filter(|(name, _)| matcher.matches(name))
        .map(|(name, bytes)| Found {
            path: Arc::from(Path::new(EMBEDDED_PREFIX).join(name)),
            content: Ok(bytes.to_vec()),
        })
        .collect()
}

/// `pattern` relative to `base` unless absolute.
pub fn glob_relative(base: &Path, pattern: &str) -> Vec<Found> {
    let full = if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let (dir, name) = match (full.parent(), full.file_name()) {
        (Some(dir), Some(name)) => (dir.to_path_buf(), name.to_string_lossy().into_owned()),
        _ => return Vec::new(),
    };
    glob_dir(&dir, &name).unwrap_or_default()
}

/// Lists `dir` and keeps the entries whose name matches; entries are listed,
/// not stat-ed, so a dangling symlink is found (and fails to read) rather than
/// silently missing.
fn glob_dir(dir: &Path, name_pattern: &str) -> io::Result<Vec<Found>> {
    let matcher =
        glob::Pattern::new(name_pattern).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.msg))?;
    let options = glob::MatchOptions {
        require_literal_leading_dot: true,
        ..glob::MatchOptions::new()
    };
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| matcher.matches_with(n, options))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let path = dir.join(&n);
            let content = read_limited(&path);
            Found {
                path: Arc::from(path),
                content,
            }
        })
        .collect())
}

/// Reads a whole file, refusing anything over [`MAX_FILE_SIZE`].
pub fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    // Only regular files: a FIFO or a device (`file:/dev/zero`) would block
    // or never end.
    if !fs::metadata(path)?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let file = fs::File::open(path)?;
    limited(file)
}

fn limited(reader: impl Read) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(MAX_FILE_SIZE + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_FILE_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_SIZE} bytes"),
        ));
    }
    Ok(out)
}

/// Decompresses a list by its suffix or, failing that, by its magic bytes
/// (`.gz`, `.bz2`, `.xz`, `.lzma`); plain text passes through.
pub fn decompress(name: &Path, data: Vec<u8>) -> io::Result<Vec<u8>> {
    let ext = name.extension().and_then(|e| e.to_str()).unwrap_or("");
    let format = match ext {
        "gz" => Some(Compression::Gzip),
        "bz2" => Some(Compression::Bzip2),
        "xz" => Some(Compression::Xz),
        "lzma" => Some(Compression::Lzma),
        _ => Compression::sniff(&data),
    };
    match format {
        None => Ok(data),
        Some(Compression::Gzip) => limited(flate2::read::MultiGzDecoder::new(&data[..])),
        Some(Compression::Bzip2) => limited(bzip2::read::MultiBzDecoder::new(&data[..])),
        Some(Compression::Xz) => limited(xz2::read::XzDecoder::new_multi_decoder(&data[..])),
        Some(Compression::Lzma) => {
            let stream = xz2::stream::Stream::new_lzma_decoder(u64::MAX).map_err(io::Error::other)?;
            limited(xz2::read::XzDecoder::new_stream(&data[..], stream))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    Gzip,
    Bzip2,
    Xz,
    Lzma,
}

impl Compression {
    fn sniff(data: &[u8]) -> Option<Compression> {
        if data.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if data.starts_with(b"BZh") {
            Some(Compression::Bzip2)
        } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if data.starts_with(&[0x5d, 0, 0]) {
            Some(Compression::Lzma)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn embedded_glob_matches_names() {
        let found = glob_embedded("deb_mirror*.gz");
        assert_eq!(found.len(), 1);
        assert!(found[0].path.ends_with("deb_mirrors.gz"));
        assert_eq!(ConfigDir::Embedded.conf_files().unwrap().len(), 2);
    }

    #[test]
    fn directory_glob_sorts_and_reports_dangling_links() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.conf"), "x").unwrap();
        fs::write(dir.path().join("a.conf"), "y").unwrap();
        fs::write(dir.path().join(".hidden.conf"), "z").unwrap();
        std::os::unix::fs::symlink("/nonexistent/target", dir.path().join("c.conf")).unwrap();
        let found = ConfigDir::Path(dir.path().into()).conf_files().unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|f| f.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.conf", "b.conf", "c.conf"]);
        assert!(found[2].content.is_err());
    }

    #[test]
    fn every_compression_is_recognised() {
        let text = b"http://a.example/debian/\n".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&text).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&text).unwrap();
        let xz = xz.finish().unwrap();
        assert_eq!(decompress(Path::new("l.gz"), gz.clone()).unwrap(), text);
        assert_eq!(decompress(Path::new("sniffed"), gz).unwrap(), text);
        assert_eq!(decompress(Path::new("l.bz2"), bz.clone()).unwrap(), text);
        assert_eq!(decompress(Path::new("sniffed"), bz).unwrap(), text);
        assert_eq!(decompress(Path::new("sniffed"), xz).unwrap(), text);
        assert_eq!(decompress(Path::new("plain"), text.clone()).unwrap(), text);
    }

    #[test]
    fn corrupt_compressed_data_is_an_error_not_a_panic() {
        assert!(decompress(Path::new("x.gz"), vec![0x1f, 0x8b, 1, 2, 3]).is_err());
        assert!(decompress(Path::new("x.xz"), b"garbage".to_vec()).is_err());
        assert!(decompress(Path::new("x.lzma"), b"garbage".to_vec()).is_err());
    }
}
