//! Decompression chosen by the file name's suffix, the way apt names its
//! index files.
//!
//! | suffix | decoder | several members or streams |
//! |---|---|---|
//! | none (any other) | plain text | |
//! | `.gz` | flate2 | decoded in turn (`gzip` of concatenated files) |
//! | `.bz2` | bzip2 | decoded in turn (`pbzip2`) |
//! | `.xz` | liblzma, memory limit [`XZ_MEMLIMIT`] | decoded in turn |
//! | `.lzma` | liblzma, the legacy `lzma_alone` format | one stream |
//! | `.zst` | ruzstd (pure Rust), window ≤ 100 MiB | frames decoded in turn, skippable frames skipped, content checksums checked |
//! | `.lz4` | none: [`Problem::UnsupportedCompression`] | |
//!
//! Compressed input that is empty, corrupt or cut short fails with
//! [`Problem::Corrupt`] at the line being read; nothing is ever read
//! whole into memory.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use super::error::{IndexError, Problem};
use super::suffix::split_suffix;
pub use super::suffix::Compression;

/// What liblzma may allocate for one `.xz` stream: `xz -9` needs 65 MiB,
/// and a hostile header asks for up to 1.5 GiB.
const XZ_MEMLIMIT: u64 = 256 << 20;
/// Buffers below and above a decoder.
const BUFFER: usize = 64 << 10;

/// The text of the index file at `path` (any path or name: only its
/// suffix counts), decompressed as its suffix says, from its bytes `input`.
pub fn decompress<'a>(path: &str, input: impl Read + 'a) -> Result<Box<dyn BufRead + 'a>, IndexError> {
    let compression = match split_suffix(path).1 {
        None => Compression::Plain,
        Some((_, Some(compression))) => compression,
        Some((suffix, None)) => return Err(IndexError::whole(Problem::UnsupportedCompression { suffix })),
    };
    let mut input = BufReader::with_capacity(BUFFER, input);
    if compression != Compression::Plain {
        let empty = input
            .fill_buf()
            .map_err(|e| IndexError::whole(Problem::Read(e)))?
            .is_empty();
        if empty {
            return Err(IndexError::at(
                1,
                Problem::Corrupt {
                    compression,
                    source: io::Error::new(io::ErrorKind::UnexpectedEof, "empty file"),
                },
            ));
        }
    }
    let decoder: Box<dyn Read + 'a> = match compression {
        Compression::Plain => return Ok(Box::new(input)),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Compression::Xz => Box::new(xz2::bufread::XzDecoder::new_stream(
            input,
            xz_stream(xz2::stream::Stream::new_stream_decoder(
                XZ_MEMLIMIT,
                xz2::stream::CONCATENATED,
            ))?,
        )),
        Compression::Lzma => Box::new(xz2::bufread::XzDecoder::new_stream(
            input,
            xz_stream(xz2::stream::Stream::new_lzma_decoder(XZ_MEMLIMIT))?,
        )),
        Compression::Zstd => Box::new(Zstd::new(input)),
    };
    Ok(Box::new(BufReader::with_capacity(
        BUFFER,
        Decoded {
            inner: decoder,
            compression,
        },
    )))
}

fn xz_stream(
    made: Result<xz2::stream::Stream, xz2::stream::Error>,
) -> Result<xz2::stream::Stream, IndexError> {
    made.map_err(|e| IndexError::whole(Problem::Read(io::Error::other(e))))
}

/// A decoder whose every error says it came from decoding `compression`.
struct Decoded<D> {
    inner: D,
    compression: Compression,
}

impl<D: Read> Read for Decoded<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|source| {
            let kind = source.kind();
            io::Error::new(
                kind,
                DecodeError {
                    compression: self.compression,
                    source,
                },
            )
        })
    }
}

/// An error of a decoder, carried through `io::Error` to the line reader,
/// which makes it a [`Problem::Corrupt`].
#[derive(Debug)]
struct DecodeError {
    compression: Compression,
    source: io::Error,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decoding {}", self.compression)
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The problem of a failed read: [`Problem::Corrupt`] when a decoder
/// failed, [`Problem::Read`] otherwise.
pub(super) fn read_problem(error: io::Error) -> Problem {
    if !error.get_ref().is_some_and(|inner| inner.is::<DecodeError>()) {
        return Problem::Read(error);
    }
    let kind = error.kind();
    match error.into_inner().map(|inner| inner.downcast::<DecodeError>()) {
        Some(Ok(decode)) => Problem::Corrupt {
            compression: decode.compression,
            source: decode.source,
        },
        Some(Err(other)) => Problem::Read(io::Error::new(kind, other)),
        None => Problem::Read(io::Error::from(kind)),
    }
}

/// A zstd stream of one or more frames (RFC 8878 §3). ruzstd's own
/// `StreamingDecoder` stops after the first frame, so the frames are
/// driven here with its `FrameDecoder`.
struct Zstd<R> {
    source: R,
    frame: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> Zstd<R> {
    fn new(source: R) -> Zstd<R> {
        Zstd {
            source,
            frame: FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Reads the next frame's header, skipping skippable frames; false at
    /// the end of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.frame.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let want = u64::from(length);
                    let skipped = io::copy(&mut (&mut self.source).take(want), &mut io::sink())?;
                    if skipped != want {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "a skippable frame cut short",
                        ));
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }

    /// A finished frame's checksum, when it has one, matches its content.
    fn check_frame(&self) -> io::Result<()> {
        match (
            self.frame.get_checksum_from_data(),
            self.frame.get_calculated_checksum(),
        ) {
            (Some(given), Some(computed)) if given != computed => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "content checksum mismatch",
            )),
            _ => Ok(()),
        }
    }
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            if self.frame.can_collect() > 0 {
                let n = self.frame.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            if self.frame.is_finished() {
                if self.frame.can_collect() == 0 {
                    self.check_frame()?;
                    self.in_frame = false;
                }
                continue;
            }
            self.frame
                .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"Package: a\nFilename: pool/a.deb\n";

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn bz2(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(path: &str, bytes: &[u8]) -> Result<Vec<u8>, Problem> {
        let mut reader = decompress(path, bytes).map_err(IndexError::into_problem)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(read_problem)?;
        Ok(out)
    }

    #[test]
    fn the_suffix_chooses_the_decoder() {
        assert_eq!(read_all("x/Packages", TEXT).unwrap(), TEXT);
        assert_eq!(read_all("x/InRelease", TEXT).unwrap(), TEXT);
        assert_eq!(read_all("Packages.gz", &gz(TEXT)).unwrap(), TEXT);
        assert_eq!(read_all("Packages.bz2", &bz2(TEXT)).unwrap(), TEXT);
        assert_eq!(read_all("Packages.xz", &xz(TEXT)).unwrap(), TEXT);
    }

    #[test]
    fn concatenated_members_are_all_read() {
        for (name, pack) in [("P.gz", gz as fn(&[u8]) -> Vec<u8>), ("P.bz2", bz2), ("P.xz", xz)] {
            let mut two = pack(b"first\n");
            two.extend(pack(b"second\n"));
            assert_eq!(read_all(name, &two).unwrap(), b"first\nsecond\n", "{name}");
        }
    }

    #[test]
    fn truncated_or_corrupt_or_empty_compressed_input_is_corrupt() {
        let long: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("Package: p{i}\n").into_bytes())
            .collect();
        for (name, packed) in [("P.gz", gz(&long)), ("P.bz2", bz2(&long)), ("P.xz", xz(&long))] {
            for cut in [packed.len() / 2, packed.len() - 1] {
                let got = read_all(name, &packed[..cut]);
                assert!(
                    matches!(got, Err(Problem::Corrupt { .. })),
                    "{name} cut at {cut}: {got:?}"
                );
            }
            let mut flipped = packed.clone();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0x55;
            assert!(
                matches!(read_all(name, &flipped), Err(Problem::Corrupt { .. })),
                "{name} corrupt"
            );
            assert!(matches!(read_all(name, b""), Err(Problem::Corrupt { .. })));
        }
        assert!(matches!(
            read_all("P.zst", b"not zstd at all"),
            Err(Problem::Corrupt {
                compression: Compression::Zstd,
                ..
            })
        ));
    }

    #[test]
    fn lz4_is_refused_up_front() {
        let err = decompress("x/Packages.lz4", &b""[..]).err().unwrap();
        assert!(matches!(
            err.problem(),
            Problem::UnsupportedCompression { suffix: ".lz4" }
        ));
        assert_eq!(err.line(), None);
    }

    #[test]
    fn skippable_zstd_frames_are_skipped() {
        // A skippable frame alone: magic 0x184D2A50, length 3, three bytes.
        let mut bytes = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        assert_eq!(read_all("P.zst", &bytes).unwrap(), b"");
        bytes.truncate(10);
        assert!(matches!(read_all("P.zst", &bytes), Err(Problem::Corrupt { .. })));
    }
}
