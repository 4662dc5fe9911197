//! Reading cached files: exact byte ranges, in chunks of at most [`CHUNK`],
//! into uninitialised memory. Shared by the bodies of complete files and of
//! downloads in progress.

use std::fs::File;

use bytes::{Bytes, BytesMut};

/// Largest read of a file body.
pub const CHUNK: usize = 256 * 1024;

/// Reads exactly `[start, end)` of a file; a file shorter than that is an
/// error (it shrank while served).
pub fn read_range(file: &File, start: u64, end: u64) -> std::io::Result<Bytes> {
    let want = end.saturating_sub(start) as usize;
    // Read into uninitialised capacity: zeroing the buffer first would cost
    // as much as a page-cache read of it.
    let mut buf = BytesMut::with_capacity(want);
    while buf.len() < want {
        let done = buf.len();
        let offset = start + done as u64;
        let spare = &mut buf.spare_capacity_mut()[..want - done];
        match rustix::io::pread(file, spare, offset) {
            Ok(([], _)) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "cached file shrank while being served",
                ))
            }
            Ok((filled, _)) => {
                let n = filled.len();
                // SAFETY: pread initialised the first `n` bytes of the spare
                // capacity.
                unsafe { buf.set_len(done + n) };
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn read_range_reads_exactly() {
        let data: Vec<u8> = (0..5000).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        let file = File::open(f.path()).unwrap();
        assert_eq!(read_range(&file, 100, 4100).unwrap(), &data[100..4100]);
    }
}
