//! The OpenPGP clear-signed frame of an `InRelease` (RFC 4880 §7), taken
//! off line by line so the signed text reaches the deb822 reader as if it
//! were a plain `Release`. The signature is apt's to check, not ours: its
//! block is only required to be there, whole.
//!
//! | state | line | becomes |
//! |---|---|---|
//! | first line | `-----BEGIN PGP SIGNED MESSAGE-----` | headers (dropped) |
//! | first line | anything else | plain text to the end: a `Release` |
//! | headers | `Hash: SHA256` (RFC 4880 §7 allows no other) | dropped; anything else [`Problem::ArmourHeader`] |
//! | headers | blank | text (dropped) |
//! | text | `- ` followed by the line | the line, unescaped |
//! | text | `-----BEGIN PGP SIGNATURE-----` | signature (dropped) |
//! | text | any other line starting with `-` | [`Problem::UnescapedDash`] |
//! | signature | `-----END PGP SIGNATURE-----` | done (dropped); anything else dropped |
//! | done | blank | dropped; anything else [`Problem::AfterSignature`] |
//!
//! The end of the input in the headers or the text is
//! [`Problem::NoSignature`], in the signature [`Problem::UnterminatedSignature`].

use super::error::Problem;

const BEGIN_MESSAGE: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &[u8] = b"-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &[u8] = b"-----END PGP SIGNATURE-----";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Armour {
    /// Nothing is stripped: indexes that are never signed.
    Off,
    /// The first line decides.
    First,
    Headers,
    Text,
    Signature,
    Done,
}

impl Armour {
    /// What of `line` (without its line break) is text: `Some(n)` for
    /// `line[n..]`, `None` to drop it.
    pub(super) fn filter(&mut self, line: &[u8]) -> Result<Option<usize>, Problem> {
        let trimmed = line.trim_ascii_end();
        match *self {
            Armour::Off => Ok(Some(0)),
            Armour::First if trimmed == BEGIN_MESSAGE => {
                *self = Armour::Headers;
                Ok(None)
            }
            Armour::First => {
                *self = Armour::Off;
                Ok(Some(0))
            }
            Armour::Headers if trimmed.is_empty() => {
                *self = Armour::Text;
                Ok(None)
            }
            Armour::Headers if is_header(trimmed) => Ok(None),
            Armour::Headers => Err(Problem::ArmourHeader),
            Armour::Text if line.starts_with(b"- ") => Ok(Some(2)),
            Armour::Text if trimmed == BEGIN_SIGNATURE => {
                *self = Armour::Signature;
                Ok(None)
            }
            Armour::Text if line.starts_with(b"-") => Err(Problem::UnescapedDash),
            Armour::Text => Ok(Some(0)),
            Armour::Signature => {
                if trimmed == END_SIGNATURE {
                    *self = Armour::Done;
                }
                Ok(None)
            }
            Armour::Done if trimmed.is_empty() => Ok(None),
            Armour::Done => Err(Problem::AfterSignature),
        }
    }

    /// At the end of the input: whether the frame was whole.
    pub(super) fn finish(&self) -> Result<(), Problem> {
        match self {
            Armour::Off | Armour::First | Armour::Done => Ok(()),
            Armour::Headers | Armour::Text => Err(Problem::NoSignature),
            Armour::Signature => Err(Problem::UnterminatedSignature),
        }
    }

    /// Whether a clear-signed frame was found.
    pub(super) fn signed(&self) -> bool {
        !matches!(self, Armour::Off | Armour::First)
    }
}

/// A header of a clear-signed message: RFC 4880 §7 allows only `Hash:`.
fn is_header(line: &[u8]) -> bool {
    line.starts_with(b"Hash: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text lines of `input`, or the problem and its line number.
    fn strip(input: &str) -> Result<Vec<String>, (usize, Problem)> {
        let mut armour = Armour::First;
        let mut out = Vec::new();
        for (i, line) in input.lines().enumerate() {
            match armour.filter(line.as_bytes()) {
                Ok(Some(from)) => out.push(line[from..].to_string()),
                Ok(None) => {}
                Err(p) => return Err((i + 1, p)),
            }
        }
        armour.finish().map_err(|p| (0, p))?;
        Ok(out)
    }

    const SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----\n\
                          Hash: SHA256\n\
                          Hash: SHA512\n\
                          \n\
                          Origin: Debian\n\
                          - -----not armour\n\
                          - Suite: x\n\
                          SHA256:\n \
                          00 1 a\n\
                          -----BEGIN PGP SIGNATURE-----\n\
                          \n\
                          iQIzBAEBCAAdFiEE\n\
                          =FLNw\n\
                          -----END PGP SIGNATURE-----\n\
                          \n";

    #[test]
    fn clear_signed_text_comes_out_unescaped_without_its_frame() {
        assert_eq!(
            strip(SIGNED).unwrap(),
            [
                "Origin: Debian",
                "-----not armour",
                "Suite: x",
                "SHA256:",
                " 00 1 a"
            ]
        );
    }

    #[test]
    fn plain_release_passes_through() {
        let plain = "Origin: Debian\nSHA256:\n 00 1 a\n";
        assert_eq!(strip(plain).unwrap(), ["Origin: Debian", "SHA256:", " 00 1 a"]);
    }

    #[test]
    fn broken_frames_are_errors_with_their_line() {
        let no_blank = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\nOrigin: x\n";
        assert!(matches!(strip(no_blank), Err((3, Problem::ArmourHeader))));
        let dash = SIGNED.replace("- Suite", "-Suite");
        assert!(matches!(strip(&dash), Err((7, Problem::UnescapedDash))));
        let cut = &SIGNED[..SIGNED.find("-----BEGIN PGP SIGNATURE").unwrap()];
        assert!(matches!(strip(cut), Err((0, Problem::NoSignature))));
        let unterminated = &SIGNED[..SIGNED.find("-----END").unwrap()];
        assert!(matches!(
            strip(unterminated),
            Err((0, Problem::UnterminatedSignature))
        ));
        let after = format!("{SIGNED}Origin: evil\n");
        assert!(matches!(strip(&after), Err((16, Problem::AfterSignature))));
    }
}
