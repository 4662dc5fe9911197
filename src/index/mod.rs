//! The index model: which files a repository's indexes name, with their
//! sizes and strongest checksums, read from the indexes' text. Pure
//! parsing: no file system, no runtime. The consumers (expiration, import,
//! precache, verification of downloads) open the files and decide.
//!
//! ```text
//! cache path ──classify──► kind + base dir
//! bytes ──decompress(path)──► text ──parse(kind)──► Listed::File / Listed::ByHash … ──► Summary
//! ```
//!
//! | index | references, relative to | fields read |
//! |---|---|---|
//! | `Release`, `InRelease` (clear-signed frame stripped, signature not checked) | its directory | `MD5Sum`, `SHA1`, `SHA256`, `SHA512` merged per path; `Acquire-By-Hash`; a by-hash object `<dir>/by-hash/<ALGO>/<hex>` per digest listed |
//! | `Packages` | the archive root | `Filename`, `Size`, `MD5sum`, `SHA1`, `SHA256`, `SHA512` |
//! | `Sources` | the archive root | `Directory`, `Files`, `Checksums-Sha1`, `-Sha256`, `-Sha512` merged per name |
//! | `i18n/Index` | its directory | as a Release, without by-hash |
//! | pdiff `Index` | its `.diff/` directory | `SHA1-Download`, `SHA256-Download`, `SHA512-Download` |
//!
//! Invariants:
//! - Memory is bounded whatever the input: one line (≤ [`MAX_LINE`]) plus
//!   one paragraph's small fields, plus, where lists must be merged per
//!   path (a Release, one source package), one entry per path
//!   (≤ [`MAX_FILES`]). A longer line or more paths is an error.
//! - Any problem anywhere makes the whole index an error: an absolute or
//!   climbing path, a control byte, a size that is not a number, a digest
//!   that is not hex of its length, a contradiction between lists, a
//!   truncated or corrupt compressed file. References are handed out as
//!   they are found, so a caller that gets an error must drop those it got
//!   (and, expiring, delete nothing).
//! - No input makes it panic (a proptest feeds each parser arbitrary bytes).
//! - Paths are given as the index writes them, `.` components and doubled
//!   slashes taken out, not percent-decoded.

mod armour;
mod compression;
mod deb822;
mod error;
mod fields;
mod kind;
mod lists;
mod packages;
mod sources;
mod suffix;
mod sums;
#[cfg(test)]
mod tests;
pub mod version;

use std::io::BufRead;

pub use crate::digest::{Algorithm, Digest, HexError};
pub use compression::{decompress, Compression};
pub use error::{IndexError, Problem};
pub use kind::{classify, Classified, IndexKind};

use armour::Armour;
use deb822::Reader;
use lists::Flavour;

/// The longest line read, in bytes: a Packages `Description` line is far
/// shorter, and a longer one is an error rather than an allocation.
pub const MAX_LINE: usize = 1 << 20;

/// The most paths one Release, one i18n or pdiff Index, or one source
/// package may list (Debian's Release lists about 800).
pub const MAX_FILES: usize = 100_000;

/// An index's path without its compression suffix (`…/Packages.xz` →
/// `…/Packages`): the same index in whichever compression.
pub fn uncompressed(path: &str) -> &str {
    suffix::split_suffix(path).0
}

/// A file an index names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Relative to the index's base directory ([`classify`]).
    pub path: String,
    pub size: u64,
    /// The strongest the index gives: SHA512 > SHA256 > SHA1 > MD5.
    pub digest: Digest,
}

/// One thing an index names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// A file by its name: `main/binary-amd64/Packages.xz`,
    /// `pool/main/h/hello/hello_2.10-3_amd64.deb`.
    File(Reference),
    /// A Release's by-hash object for a file it lists, one per digest
    /// given (`main/binary-amd64/by-hash/SHA256/<hex>`), with that digest:
    /// given whether or not the Release says `Acquire-By-Hash: yes` (see
    /// [`Summary::acquire_by_hash`]); objects of files with equal content
    /// in one directory repeat. They come right after the file's
    /// [`Listed::File`].
    ByHash(Reference),
}

/// What an index said besides its references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// [`Listed::File`]s handed out.
    pub files: u64,
    /// [`Listed::ByHash`]s handed out.
    pub by_hash: u64,
    /// A Release's `Acquire-By-Hash: yes`: apt fetches the indexes it lists
    /// by their by-hash names.
    pub acquire_by_hash: bool,
    /// The input was a clear-signed message (an `InRelease`).
    pub signed: bool,
}

/// Reads the index text `input` (decompressed: [`decompress`]) of `kind`,
/// handing each thing it names to `each` as it is found, and returns what
/// else it said. Any error makes the whole index unusable, including what
/// `each` was given before it.
pub fn parse(
    kind: IndexKind,
    mut input: impl BufRead,
    mut each: impl FnMut(Listed),
) -> Result<Summary, IndexError> {
    let flavour = match kind {
        IndexKind::Release => Flavour::Release,
        IndexKind::Translations => Flavour::Translations,
        IndexKind::Diffs => Flavour::Diffs,
        IndexKind::Packages => return packages::parse(&mut Reader::new(&mut input, Armour::Off), &mut each),
        IndexKind::Sources => return sources::parse(&mut Reader::new(&mut input, Armour::Off), &mut each),
    };
    lists::parse(&mut Reader::new(&mut input, flavour.armour()), flavour, &mut each)
}
