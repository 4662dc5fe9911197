//! `Packages`: one paragraph per binary package, whose `Filename` (relative
//! to the archive root, the directory above `dists/`), `Size` and
//! strongest digest of `MD5sum`, `SHA1`, `SHA256`, `SHA512` make one
//! reference, reported at the paragraph's end. Every other field (a long
//! `Description` included) goes by unread; memory is one paragraph's six
//! small values.

use super::deb822::{Line, Reader};
use super::error::{IndexError, Problem};
use super::fields::{digest, path, size, text};
use super::sums::Sums;
use super::{Listed, Reference, Summary};
use crate::digest::Algorithm;

/// The fields read, and the algorithm of the digest ones.
const FIELDS: [(&str, Option<Algorithm>); 6] = [
    ("Filename", None),
    ("Size", None),
    ("MD5sum", Some(Algorithm::Md5)),
    ("SHA1", Some(Algorithm::Sha1)),
    ("SHA256", Some(Algorithm::Sha256)),
    ("SHA512", Some(Algorithm::Sha512)),
];

#[derive(Default)]
struct Stanza {
    filename: Option<String>,
    size: Option<u64>,
    sums: Sums,
    /// Which of [`FIELDS`] were given, by index.
    seen: [bool; FIELDS.len()],
    /// The last field, if one of ours: one-line fields must not continue.
    last: Option<&'static str>,
}

pub(super) fn parse(reader: &mut Reader<'_>, each: &mut dyn FnMut(Listed)) -> Result<Summary, IndexError> {
    let mut stanza = Stanza::default();
    let mut summary = Summary::default();
    while let Some(line) = reader.next_line()? {
        let read = match line {
            Line::Field { name, value } => stanza.field(name, value),
            Line::Continuation(_) => match stanza.last {
                Some(field) => Err(Problem::ContinuedField { field }),
                None => Ok(()),
            },
            Line::End => std::mem::take(&mut stanza).finish().map(|reference| {
                each(Listed::File(reference));
                summary.files += 1;
            }),
        };
        read.map_err(|problem| reader.error(problem))?;
    }
    Ok(summary)
}

impl Stanza {
    fn field(&mut self, name: &str, value: &[u8]) -> Result<(), Problem> {
        self.last = None;
        let Some(index) = FIELDS.iter().position(|(f, _)| f.eq_ignore_ascii_case(name)) else {
            return Ok(());
        };
        let (field, algorithm) = FIELDS[index];
        if std::mem::replace(&mut self.seen[index], true) {
            return Err(Problem::Duplicate { field });
        }
        self.last = Some(field);
        let value = text(value)?;
        match (index, algorithm) {
            (0, _) => self.filename = Some(path(value, false)?),
            (_, None) => self.size = Some(size(value)?),
            // One field per algorithm: no conflict is possible.
            (_, Some(algorithm)) => {
                let _ = self.sums.digest(digest(algorithm, value)?);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Reference, Problem> {
        let path = self.filename.ok_or(Problem::Missing { field: "Filename" })?;
        let size = self.size.ok_or(Problem::Missing { field: "Size" })?;
        let Some(digest) = self.sums.strongest() else {
            return Err(Problem::NoDigest { path });
        };
        Ok(Reference { path, size, digest })
    }
}

#[cfg(test)]
mod tests {
    use crate::index::{parse, Digest, IndexError, IndexKind, Listed, Reference};

    const MD5: &str = "0123456789abcdef0123456789abcdef";
    const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn run(text: &str) -> Result<Vec<Reference>, IndexError> {
        let mut got = Vec::new();
        let summary = parse(IndexKind::Packages, text.as_bytes(), |l| match l {
            Listed::File(r) => got.push(r),
            Listed::ByHash(r) => panic!("by-hash from Packages: {r:?}"),
        })?;
        assert_eq!(summary.files, got.len() as u64);
        Ok(got)
    }

    fn error(text: &str) -> (Option<u64>, String) {
        let err = run(text).unwrap_err();
        (err.line(), err.problem().to_string())
    }

    #[test]
    fn each_paragraph_gives_its_file_with_the_strongest_digest() {
        let text = format!(
            "Package: a\nVersion: 1\nDescription: long\n text\n .\nfilename: pool/main/a/a_1_all.deb\n\
             Size: 1234\nMD5sum: {MD5}\nSHA256: {SHA256}\n\n\n\
             Package: b\nFilename: ./b_1_all.deb\nMD5Sum: {MD5}\nSize: 5"
        );
        let got = run(&text).unwrap();
        assert_eq!(
            got,
            [
                Reference {
                    path: "pool/main/a/a_1_all.deb".into(),
                    size: 1234,
                    digest: Digest::parse(crate::index::Algorithm::Sha256, SHA256).unwrap(),
                },
                Reference {
                    path: "b_1_all.deb".into(),
                    size: 5,
                    digest: Digest::parse(crate::index::Algorithm::Md5, MD5).unwrap(),
                }
            ]
        );
    }

    #[test]
    fn an_empty_packages_file_lists_nothing() {
        assert_eq!(run("").unwrap(), []);
        assert_eq!(run("\n\n").unwrap(), []);
    }

    #[test]
    fn missing_duplicate_continued_and_hostile_fields_are_errors() {
        let ok = format!("Filename: a.deb\nSize: 1\nMD5sum: {MD5}\n");
        assert_eq!(
            error(&format!("Package: a\nSize: 1\nMD5sum: {MD5}\n\n")),
            (Some(4), "a paragraph without Filename".into())
        );
        assert_eq!(
            error(&format!("Filename: a.deb\nMD5sum: {MD5}\n")),
            (Some(2), "a paragraph without Size".into())
        );
        assert_eq!(
            error("Filename: a.deb\nSize: 1\n"),
            (Some(2), "no checksum for \"a.deb\"".into())
        );
        assert_eq!(
            error(&format!("{ok}Size: 2\n")),
            (Some(4), "field Size given twice".into())
        );
        assert_eq!(
            error(&format!("{ok} continued\n")),
            (Some(4), "field MD5sum continues on another line".into())
        );
        assert_eq!(
            error(&ok.replace("a.deb", "/etc/shadow")),
            (Some(1), "unsafe path \"/etc/shadow\"".into())
        );
        assert_eq!(
            error(&ok.replace("a.deb", "../../x.deb")),
            (Some(1), "unsafe path \"../../x.deb\"".into())
        );
        assert_eq!(
            error(&ok.replace("Size: 1", "Size: 1k")),
            (Some(2), "size \"1k\" is not a number".into())
        );
        assert_eq!(
            error(&ok.replace(MD5, &MD5[1..])),
            (Some(3), "a bad MD5Sum digest".into())
        );
        let mut latin1 = b"Description: caf\xe9\n".to_vec();
        latin1.extend_from_slice(ok.as_bytes());
        assert_eq!(parse(IndexKind::Packages, &latin1[..], |_| {}).unwrap().files, 1);
        let mut raw = b"Filename: caf\xe9.deb\nSize: 1\n".to_vec();
        raw.extend_from_slice(format!("MD5sum: {MD5}\n").as_bytes());
        let err = parse(IndexKind::Packages, &raw[..], |_| {}).unwrap_err();
        assert_eq!(
            (err.line(), err.problem().to_string()),
            (Some(1), "text that is not UTF-8".into())
        );
    }
}
