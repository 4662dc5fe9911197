//! `encb64 USER:PASSWORD`: the base64 an HTTP Basic `Authorization` header
//! carries, of the bytes as given (no configuration is read).

use std::ffi::OsStr;

use base64::Engine as _;

use crate::cli::{exit, to_stdout};

pub fn run(credentials: &OsStr) -> u8 {
    let text = encode(credentials);
    // acngtool ends it without a newline; `$(acngtool encb64 …)` is the
    // same either way, and a terminal's prompt does not end up behind it.
    to_stdout(exit::OK, |out| writeln!(out, "{text}"))
}

fn encode(credentials: &OsStr) -> String {
    base64::engine::general_purpose::STANDARD.encode(credentials.as_encoded_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt as _;

    #[test]
    fn encodes_the_bytes_as_given() {
        assert_eq!(encode(OsStr::new("user:pass")), "dXNlcjpwYXNz");
        assert_eq!(encode(OsStr::new("a")), "YQ==");
        assert_eq!(encode(OsStr::new("")), "");
        assert_eq!(encode(OsStr::from_bytes(b"\xff:\xfe")), "/zr+");
    }
}
