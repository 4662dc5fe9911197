//! `Sources`: one paragraph per source package. Its files (the `.dsc`
//! among them) are listed in `Files` (MD5), `Checksums-Sha1`,
//! `Checksums-Sha256` and `Checksums-Sha512`, by name; the lists are merged
//! per name and each file reported with its strongest digest at the
//! paragraph's end, as `Directory/name`, relative to the archive root.
//! Memory: one paragraph's files (≤ [`MAX_FILES`](super::MAX_FILES)).

use std::collections::BTreeMap;

use super::deb822::{Line, Reader};
use super::error::{IndexError, Problem};
use super::fields::{entry, join, merge, path, text};
use super::sums::Sums;
use super::{Listed, Reference, Summary};
use crate::cache::check_relative;
use crate::digest::Algorithm;

const LISTS: [(&str, Algorithm); 4] = [
    ("Files", Algorithm::Md5),
    ("Checksums-Sha1", Algorithm::Sha1),
    ("Checksums-Sha256", Algorithm::Sha256),
    ("Checksums-Sha512", Algorithm::Sha512),
];

#[derive(Default)]
struct Stanza {
    directory: Option<String>,
    files: BTreeMap<String, Sums>,
    /// The list whose lines are being read.
    list: Option<Algorithm>,
    seen: [bool; LISTS.len()],
    /// The last field was `Directory`, which must not continue.
    in_directory: bool,
}

pub(super) fn parse(reader: &mut Reader<'_>, each: &mut dyn FnMut(Listed)) -> Result<Summary, IndexError> {
    let mut stanza = Stanza::default();
    let mut summary = Summary::default();
    while let Some(line) = reader.next_line()? {
        let read = match line {
            Line::Field { name, value } => stanza.field(name, value),
            Line::Continuation(text) => stanza.line(text),
            Line::End => std::mem::take(&mut stanza).finish(&mut |reference| {
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
        self.list = None;
        self.in_directory = false;
        if name.eq_ignore_ascii_case("Directory") {
            if self.directory.is_some() {
                return Err(Problem::Duplicate { field: "Directory" });
            }
            self.directory = Some(path(text(value)?, true)?);
            self.in_directory = true;
            return Ok(());
        }
        let Some(index) = LISTS.iter().position(|(f, _)| f.eq_ignore_ascii_case(name)) else {
            return Ok(());
        };
        let (field, algorithm) = LISTS[index];
        if std::mem::replace(&mut self.seen[index], true) {
            return Err(Problem::Duplicate { field });
        }
        if !value.is_empty() {
            return Err(Problem::ValueOnListLine { field });
        }
        self.list = Some(algorithm);
        Ok(())
    }

    fn line(&mut self, text: &[u8]) -> Result<(), Problem> {
        if self.in_directory {
            return Err(Problem::ContinuedField { field: "Directory" });
        }
        let Some(algorithm) = self.list else {
            return Ok(());
        };
        let (digest, size, name) = entry(algorithm, text)?;
        merge(&mut self.files, name, size, digest)
    }

    fn finish(self, each: &mut dyn FnMut(Reference)) -> Result<(), Problem> {
        let directory = self.directory.ok_or(Problem::Missing { field: "Directory" })?;
        if self.files.is_empty() {
            return Err(Problem::Missing { field: "Files" });
        }
        for (name, sums) in self.files {
            let (Some(digest), Some(size)) = (sums.strongest(), sums.known_size()) else {
                continue;
            };
            let path = join(&directory, &name);
            check_relative(&path).map_err(|source| Problem::Path {
                path: path.clone(),
                source,
            })?;
            each(Reference { path, size, digest });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::index::{parse, Algorithm, IndexError, IndexKind, Listed};

    const MD5: &str = "0123456789abcdef0123456789abcdef";
    const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn run(text: &str) -> Result<Vec<(String, u64, Algorithm)>, IndexError> {
        let mut got = Vec::new();
        parse(IndexKind::Sources, text.as_bytes(), |l| {
            if let Listed::File(r) = l {
                got.push((r.path, r.size, r.digest.algorithm()));
            }
        })?;
        Ok(got)
    }

    fn error(text: &str) -> (Option<u64>, String) {
        let err = run(text).unwrap_err();
        (err.line(), err.problem().to_string())
    }

    #[test]
    fn files_merge_per_name_below_the_directory() {
        let text = format!(
            "Package: hello\nBinary: hello\nFiles:\n {MD5} 1000 hello_1.dsc\n {MD5} 20 hello_1.tar.xz\n\
             Checksums-Sha256:\n {SHA256} 1000 hello_1.dsc\nDirectory: pool/main/h/hello\n\n\
             Package: flat\nDirectory: .\nFiles:\n {MD5} 3 flat_1.dsc\n"
        );
        assert_eq!(
            run(&text).unwrap(),
            [
                ("pool/main/h/hello/hello_1.dsc".into(), 1000, Algorithm::Sha256),
                ("pool/main/h/hello/hello_1.tar.xz".into(), 20, Algorithm::Md5),
                ("flat_1.dsc".into(), 3, Algorithm::Md5),
            ]
        );
    }

    #[test]
    fn broken_paragraphs_are_errors() {
        let files = format!("Files:\n {MD5} 1 a.dsc\n");
        assert_eq!(
            error(&format!("Package: a\n{files}\n")),
            (Some(4), "a paragraph without Directory".into())
        );
        assert_eq!(
            error("Package: a\nDirectory: pool/a\n"),
            (Some(2), "a paragraph without Files".into())
        );
        assert_eq!(
            error(&format!("Directory: pool/a\n more\n{files}")),
            (Some(2), "field Directory continues on another line".into())
        );
        assert_eq!(
            error(&format!("Directory: ../a\n{files}")),
            (Some(1), "unsafe path \"../a\"".into())
        );
        assert_eq!(
            error(&format!("Directory: a\nFiles:\n {MD5} 1 ../../b.dsc\n")),
            (Some(3), "unsafe path \"../../b.dsc\"".into())
        );
        assert_eq!(
            error(&format!(
                "Directory: a\n{files}Checksums-Sha256:\n {SHA256} 2 a.dsc\n"
            )),
            (Some(5), "\"a.dsc\" is listed with two sizes or checksums".into())
        );
        assert_eq!(
            error(&format!("Directory: a\n{files}files:\n")),
            (Some(4), "field Files given twice".into())
        );
    }
}
