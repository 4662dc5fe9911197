//! `LocalDirs` (spec §2.7): directories of this machine served read-only,
//! `LocalDirs: acng-doc /usr/share/doc/apt-cacher-ng` making
//! `/acng-doc/README` the file `/usr/share/doc/apt-cacher-ng/README`.
//!
//! | the path names                         | [`open`] gives                        |
//! |----------------------------------------|---------------------------------------|
//! | a regular file                         | [`Found::File`], open                 |
//! | a directory, the path ending in `/`    | [`Found::Listing`], "Index of" page   |
//! | a directory, without the `/`           | [`Found::Redirect`] to the `/` form   |
//! | a symlink anywhere below the root      | [`LocalDirError::Forbidden`]          |
//! | a FIFO, socket or device               | [`LocalDirError::Unsupported`]        |
//! | nothing, or a file used as a directory | [`LocalDirError::NotFound`]           |
//!
//! The configured root is opened at each use (it may be a symlink, the
//! administrator's choice); everything below it through [`crate::beneath`],
//! so no request opens anything outside it, and **no symlink below the root
//! is followed** where apt-cacher-ng follows them: a link in a served tree,
//! however it got there, must not publish what it points at. Listings show
//! such links, marked and without a link.
//!
//! Everything here is blocking file-system work: the service runs it off the
//! runtime's threads. HTTP framing is the service's.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use askama::Template;
use rustix::fs::{fstat, openat, statat, AtFlags, FileType, Mode, OFlags, Stat};

use super::mime;
use crate::beneath;

/// Entries a listing shows at most; the rest are counted.
pub const MAX_ENTRIES: usize = 10_000;

/// What a path in a local directory is.
#[derive(Debug)]
pub enum Found {
    File(LocalFile),
    Listing(Listing),
    /// A directory named without its trailing slash: the client is sent to
    /// `path` (below the directory's name, with the slash, percent-encoded;
    /// see [`location`]), where relative links in its listing resolve.
    Redirect {
        path: String,
    },
}

/// A regular file, open for reading.
#[derive(Debug)]
pub struct LocalFile {
    pub file: File,
    pub len: u64,
    /// Its mtime; `None` when no HTTP date can say it (before 1970).
    pub modified: Option<SystemTime>,
    pub content_type: &'static str,
}

/// A directory's entries, directories first, each group by name.
#[derive(Debug)]
pub struct Listing {
    /// `/acng-doc/html/`: the local directory's name and the path below it.
    title: String,
    /// Below the root, so a parent link stays in the local directory.
    below_root: bool,
    entries: Vec<Entry>,
    /// Entries past [`MAX_ENTRIES`], not listed.
    left_out: usize,
}

/// One entry of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: Vec<u8>,
    kind: Kind,
    size: u64,
    modified: Option<SystemTime>,
}

/// What an entry is, as far as a listing tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Directory,
    File,
    /// Listed and marked, never opened.
    Symlink,
    /// A FIFO, socket or device: listed, refused when asked for.
    Special,
}

/// Why a path gets no file, in apt-cacher-ng's classes (spec §2.7).
#[derive(Debug)]
pub enum LocalDirError {
    /// ENOENT, ENOTDIR.
    NotFound(io::Error),
    /// EACCES, EPERM.
    PermissionDenied(io::Error),
    /// A symlink below the root (ELOOP), or a path that would leave it
    /// (EXDEV from `RESOLVE_BENEATH`, a `.`/`..`/empty segment).
    Forbidden(io::Error),
    /// ENAMETOOLONG.
    NameTooLong(io::Error),
    /// Neither a regular file nor a directory.
    Unsupported,
    /// Anything else: a fault of this machine, logged.
    Io(io::Error),
    /// The listing page could not be rendered (a bug).
    Render(askama::Error),
}

impl From<io::Error> for LocalDirError {
    fn from(e: io::Error) -> LocalDirError {
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR) => LocalDirError::NotFound(e),
            Some(libc::EACCES | libc::EPERM) => LocalDirError::PermissionDenied(e),
            Some(libc::ELOOP | libc::EXDEV) => LocalDirError::Forbidden(e),
            Some(libc::ENAMETOOLONG) => LocalDirError::NameTooLong(e),
            _ if e.kind() == io::ErrorKind::InvalidInput => LocalDirError::Forbidden(e),
            _ => LocalDirError::Io(e),
        }
    }
}

impl From<rustix::io::Errno> for LocalDirError {
    fn from(e: rustix::io::Errno) -> LocalDirError {
        io::Error::from(e).into()
    }
}

impl fmt::Display for LocalDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LocalDirError::NotFound(_) => "no such file or directory",
            LocalDirError::PermissionDenied(_) => "permission denied",
            LocalDirError::Forbidden(_) => "a symlink, or a path out of the directory",
            LocalDirError::NameTooLong(_) => "name too long",
            LocalDirError::Unsupported => "not a regular file or directory",
            LocalDirError::Io(_) => "local directory read error",
            LocalDirError::Render(_) => "the listing cannot be rendered",
        })
    }
}

impl std::error::Error for LocalDirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LocalDirError::NotFound(e)
            | LocalDirError::PermissionDenied(e)
            | LocalDirError::Forbidden(e)
            | LocalDirError::NameTooLong(e)
            | LocalDirError::Io(e) => Some(e),
            LocalDirError::Render(e) => Some(e),
            LocalDirError::Unsupported => None,
        }
    }
}

/// Looks `path` up in the local directory `name` rooted at `root`. `path` is
/// the request's, normalised: `/sub/file`, `/sub/`, or empty for the
/// directory itself named without its slash. A query names nothing here.
pub fn open(name: &str, root: &Path, path: &str) -> Result<Found, LocalDirError> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let wants_dir = path.ends_with('/');
    let rel = path.trim_matches('/');
    if !rel.is_empty() && rel.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(LocalDirError::Forbidden(io::ErrorKind::InvalidInput.into()));
    }
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root = openat(rustix::fs::CWD, root, dir_flags, Mode::empty())?;
    // A path descriptor first: opening a FIFO for reading would wait for a
    // writer, and opening some devices does something.
    let probe = match rel {
        "" => root.try_clone()?,
        rel => beneath::open(root.as_fd(), rel, OFlags::PATH)?,
    };
    match FileType::from_raw_mode(fstat(&probe)?.st_mode) {
        FileType::RegularFile if wants_dir => Err(LocalDirError::NotFound(rustix::io::Errno::NOTDIR.into())),
        FileType::RegularFile => {
            // Replaced since the probe? O_NONBLOCK keeps a FIFO from
            // blocking and the second fstat refuses it.
            let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
            let fd = beneath::open(root.as_fd(), rel, flags)?;
            regular_file(fd, rel)
        }
        FileType::Directory if !wants_dir => Ok(Found::Redirect {
            path: format!("{}/", encode(path.as_bytes(), true)),
        }),
        FileType::Directory => {
            let fd = match rel {
                "" => root,
                rel => beneath::open(root.as_fd(), rel, OFlags::RDONLY | OFlags::DIRECTORY)?,
            };
            let (entries, left_out) = read_dir(fd, MAX_ENTRIES)?;
            Ok(Found::Listing(Listing {
                title: format!("/{name}{path}"),
                below_root: !rel.is_empty(),
                entries,
                left_out,
            }))
        }
        // A path descriptor with O_NOFOLLOW is the link itself, not ELOOP.
        FileType::Symlink => Err(LocalDirError::Forbidden(rustix::io::Errno::LOOP.into())),
        _ => Err(LocalDirError::Unsupported),
    }
}

/// Where [`Found::Redirect`] sends a client: the same form it asked in, a
/// path (`/acng-doc/html/`) or, for a proxy-style request, a URL
/// (`http://acng-doc/html/`).
pub fn location(name: &str, path: &str, absolute_form: bool) -> String {
    let name = encode(name.as_bytes(), false);
    if absolute_form {
        format!("http://{name}{path}")
    } else {
        format!("/{name}{path}")
    }
}

fn regular_file(fd: OwnedFd, rel: &str) -> Result<Found, LocalDirError> {
    let st = fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(LocalDirError::Unsupported);
    }
    let file = File::from(fd);
    let file_name = rel.rsplit('/').next().unwrap_or(rel);
    let content_type = mime::Table::system().content_type(file_name, || {
        let mut head = vec![0; mime::SNIFF];
        let n = file.read_at(&mut head, 0).unwrap_or(0);
        head.truncate(n);
        head
    });
    Ok(Found::File(LocalFile {
        len: st.st_size as u64,
        modified: mtime(&st),
        content_type,
        file,
    }))
}

/// The entries of `dir` (not `.` and `..`), the first `limit` of them in
/// listing order, and how many more there are. Memory stays bounded by
/// `limit` however large the directory: only the names that may still be
/// listed are kept while reading.
fn read_dir(dir: OwnedFd, limit: usize) -> io::Result<(Vec<Entry>, usize)> {
    let at = dir.try_clone()?;
    let mut reader = rustix::fs::Dir::new(dir)?;
    let mut kept: BinaryHeap<(bool, Vec<u8>)> = BinaryHeap::new();
    let mut left_out = 0;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => statat(&at, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
            _ => false,
        };
        // The heap's greatest is the last in listing order: directories
        // (false) first.
        kept.push((!is_dir, name.to_vec()));
        if kept.len() > limit {
            kept.pop();
            left_out += 1;
        }
    }
    let mut entries: Vec<Entry> = kept
        .into_vec()
        .into_iter()
        // Gone since it was read: nothing to list.
        .filter_map(|(_, name)| {
            let st = statat(&at, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
            Some(Entry::new(name, &st))
        })
        .collect();
    sort(&mut entries);
    Ok((entries, left_out))
}

/// Listing order: directories first, then the rest, each by name (bytes).
fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        let group = |e: &Entry| Reverse(e.kind == Kind::Directory);
        (group(a), &a.name).cmp(&(group(b), &b.name))
    });
}

impl Entry {
    fn new(name: Vec<u8>, st: &Stat) -> Entry {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Kind::Directory,
            FileType::RegularFile => Kind::File,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Special,
        };
        Entry {
            name,
            kind,
            size: st.st_size as u64,
            modified: mtime(st),
        }
    }
}

/// A file's mtime, when an HTTP date can hold it (1970 to 9999).
fn mtime(st: &Stat) -> Option<SystemTime> {
    const YEAR_10000: u64 = 253_402_300_800;
    let secs = u64::try_from(st.st_mtime).ok().filter(|s| *s < YEAR_10000)?;
    let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0).min(999_999_999);
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

impl Listing {
    /// The "Index of" page.
    pub fn render(&self) -> Result<String, LocalDirError> {
        let base = encode(self.title.as_bytes(), true);
        let rows: Vec<Row> = self.entries.iter().map(|e| Row::new(e, &base)).collect();
        IndexPage {
            title: &self.title,
            parent: self.below_root,
            unlinked: rows.iter().any(|r| r.href.is_none()),
            rows,
            left_out: self.left_out,
            limit: MAX_ENTRIES,
            version: env!("CARGO_PKG_VERSION"),
        }
        .render()
        .map_err(LocalDirError::Render)
    }
}

/// `templates/local_dir.html`; askama escapes every value for HTML.
#[derive(Template)]
#[template(path = "local_dir.html")]
struct IndexPage<'a> {
    title: &'a str,
    parent: bool,
    rows: Vec<Row>,
    unlinked: bool,
    left_out: usize,
    limit: usize,
    version: &'static str,
}

/// One line of the page, formatted.
struct Row {
    mark: &'static str,
    name: String,
    /// Relative and percent-encoded; none for what would not be served.
    href: Option<String>,
    modified: String,
    size: String,
}

impl Row {
    /// `base` is the listed directory's own path, percent-encoded.
    fn new(entry: &Entry, base: &str) -> Row {
        let dir = entry.kind == Kind::Directory;
        let slash = if dir { "/" } else { "" };
        let mut href = format!("{}{slash}", encode(&entry.name, false));
        // Only what a request can reach gets a link: no symlinks or special
        // files, and no name the request checks refuse (not UTF-8, `..` at
        // the end, control bytes).
        let reachable = matches!(entry.kind, Kind::Directory | Kind::File)
            && std::str::from_utf8(&entry.name).is_ok()
            && crate::request::path::decode(&format!("{base}{href}")).is_ok();
        if !reachable {
            href.clear();
        }
        Row {
            mark: match entry.kind {
                Kind::Directory => "[DIR]",
                Kind::File => "",
                Kind::Symlink => "[LNK]",
                Kind::Special => "[SPC]",
            },
            name: format!("{}{slash}", String::from_utf8_lossy(&entry.name)),
            href: (!href.is_empty()).then_some(href),
            modified: entry.modified.map_or_else(|| "-".to_string(), listing_date),
            size: if entry.kind == Kind::File {
                human_size(entry.size)
            } else {
                "-".to_string()
            },
        }
    }
}

/// `%d-%b-%Y %H:%M` in UTC (acng uses local time; a server's listing
/// should not depend on its time zone): `22-Nov-2026 02:58`.
fn listing_date(t: SystemTime) -> String {
    // IMF-fixdate, `Sun, 22 Nov 2026 02:58:26 GMT`, holds every part.
    let http = httpdate::fmt_http_date(t);
    let parts: Vec<&str> = http.split(' ').collect();
    match parts.as_slice() {
        [_, day, month, year, time, _] => format!("{day}-{month}-{year} {}", &time[..5]),
        _ => http,
    }
}

/// Sizes as `ls -h` shows them: bytes below 1 KiB, then one decimal below
/// ten units (`1.5K`), whole units above (`12M`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if bytes < 1024 {
        return bytes.to_string();
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

/// Percent-encodes all but RFC 3986's unreserved bytes (and `/` when
/// `keep_slash`): safe in a path, in an attribute, and never a scheme.
fn encode(bytes: &[u8], keep_slash: bool) -> String {
    crate::url::percent_encode(bytes, |b| {
        b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/')
    })
}

#[cfg(test)]
mod tests;
