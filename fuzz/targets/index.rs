//! Fuzz target: the index model, `index::decompress` then `index::parse`,
//! on what a mirror may send as a Release, Packages, Sources, i18n or pdiff
//! Index.
//!
//! Input: one byte for the kind (modulo 5: Release, Packages, Sources,
//! Translations, Diffs), one for the encoding (modulo 7: 0 the rest is the
//! index's text; 1 the same text, gzipped here; 2–6 the rest is a `.gz`,
//! `.bz2`, `.xz`, `.lzma` or `.zst` file as the mirror sent it), then the
//! rest.
//!
//! Invariants: the summary counts what was handed out; every path is a
//! safe cache-relative path; only a Release hands out by-hash objects, and
//! each follows its file, in the file's directory, with the file's size,
//! one per digest, the file's own among them; a Release or Index lists a
//! path once; only a Release is read as signed; an error on a line names
//! a line of the text; reading twice gives the same; and the gzipped text
//! reads as the text does.

use std::io::Write;

use debcache::cache::check_relative;
use debcache::index::{self, IndexKind, Listed};

const SUFFIXES: [&str; 5] = [".gz", ".bz2", ".xz", ".lzma", ".zst"];

/// What reading `bytes` as the file `name` of `kind` gave: the things
/// handed out, then the summary or the error as text.
type Outcome = (Vec<Listed>, Result<index::Summary, (Option<u64>, String)>);

fn read(kind: IndexKind, name: &str, bytes: &[u8]) -> Outcome {
    let mut listed = Vec::new();
    let result = index::decompress(name, bytes)
        .and_then(|text| index::parse(kind, text, |l| listed.push(l)))
        .map_err(|e| (e.line(), e.to_string()));
    (listed, result)
}

pub fn run(data: &[u8]) {
    let [kind, encoding, rest @ ..] = data else {
        return;
    };
    let kind = IndexKind::ALL[usize::from(*kind) % IndexKind::ALL.len()];
    let encoding = encoding % 7;
    let name = match encoding {
        0 | 1 => "Index".to_string(),
        n => format!("Index{}", SUFFIXES[usize::from(n) - 2]),
    };
    let got = read(kind, &name, rest);
    check(kind, &got);
    let again = read(kind, &name, rest);
    assert!(again.0 == got.0, "handed out differently the second time");
    assert_eq!(again.1, got.1, "ended differently the second time");

    if encoding > 1 {
        return;
    }
    if let Err((Some(line), e)) = &got.1 {
        let lines = rest.split(|&b| b == b'\n').count() as u64;
        assert!((1..=lines).contains(line), "{e}: the text has {lines} lines");
    }
    if encoding == 1 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(rest).unwrap();
        let gz = gz.finish().unwrap();
        let zipped = read(kind, "Index.gz", &gz);
        assert!(zipped.0 == got.0, "gzipped, handed out differently");
        assert_eq!(zipped.1, got.1, "gzipped, ended differently");
    }
}

fn check(kind: IndexKind, (listed, result): &Outcome) {
    let Ok(summary) = result else {
        return;
    };
    let files = listed.iter().filter(|l| matches!(l, Listed::File(_))).count();
    assert_eq!(summary.files, files as u64);
    assert_eq!(summary.by_hash, (listed.len() - files) as u64);
    assert!(
        !summary.signed || kind == IndexKind::Release,
        "{kind:?} read as signed"
    );

    let merged = matches!(
        kind,
        IndexKind::Release | IndexKind::Translations | IndexKind::Diffs
    );
    let mut seen = std::collections::HashSet::new();
    let mut items = listed.iter().peekable();
    while let Some(item) = items.next() {
        let Listed::File(file) = item else {
            panic!("a by-hash object before any file");
        };
        check_relative(&file.path).unwrap_or_else(|e| panic!("{:?}: {e}", file.path));
        assert!(!merged || seen.insert(&file.path), "{:?} listed twice", file.path);
        let dir = file.path.rsplit_once('/').map(|(dir, _)| format!("{dir}/"));
        let mut digests = Vec::new();
        while let Some(Listed::ByHash(object)) = items.peek() {
            items.next();
            let name = format!("by-hash/{}/{}", object.digest.algorithm(), object.digest);
            assert_eq!(object.path, format!("{}{name}", dir.as_deref().unwrap_or("")));
            assert_eq!(object.size, file.size, "{}", object.path);
            assert!(!digests.contains(&object.digest), "{} twice", object.path);
            digests.push(object.digest);
        }
        if kind == IndexKind::Release {
            assert!(
                digests.contains(&file.digest),
                "{}: no object of its digest",
                file.path
            );
        } else {
            assert!(digests.is_empty(), "by-hash objects from a {kind:?}");
        }
    }
}
