//! Reading cached files: exact byte ranges, in chunks of at most [`CHUNK`],
//! into uninitialised memory. Shared by the bodies of complete files and of
//! downloads in progress.
//!
//! A read never waits for the disk on a runtime worker (a cold disk would
//! stall every client of that worker, hot hits included):
//!
//! | the pages of the range                 | read                                                        |
//! |----------------------------------------|-------------------------------------------------------------|
//! | in the page cache                      | at once, `preadv2(RWF_NOWAIT)` on the worker                |
//! | partly or not at all                   | what is resident at once, the rest on the blocking pool     |
//! | `RWF_NOWAIT` unsupported (`EOPNOTSUPP`) | on the blocking pool, for every later chunk of the transfer |

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::task::JoinHandle;

/// Largest read of a file body.
pub const CHUNK: usize = 256 * 1024;

/// Reads exactly `[start, end)` of a file, at once (a small file answered
/// with its headers); a file shorter than that is an error (it shrank while
/// served). Pages not in memory are read through `block_in_place`, which
/// hands this worker's other tasks to another thread first.
pub fn read_range(file: &File, start: u64, end: u64) -> io::Result<Bytes> {
    let want = end.saturating_sub(start) as usize;
    let mut buf = BytesMut::with_capacity(want);
    if read_resident(file, start, &mut buf, want)? == Resident::All {
        return Ok(buf.freeze());
    }
    let on_workers = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if on_workers {
        tokio::task::block_in_place(|| read_rest(file, start, &mut buf, want))?;
    } else {
        read_rest(file, start, &mut buf, want)?;
    }
    Ok(buf.freeze())
}

/// Exactly the first `len` bytes of `file` from the page cache, or
/// `WouldBlock` when some need the disk (a file system without
/// `RWF_NOWAIT` is read as it comes).
pub fn read_cached(file: &File, len: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(len);
    match read_resident(file, 0, &mut buf, len)? {
        Resident::All => Ok(buf.freeze()),
        Resident::Partly => Err(io::ErrorKind::WouldBlock.into()),
        Resident::Unsupported => {
            read_rest(file, 0, &mut buf, len)?;
            Ok(buf.freeze())
        }
    }
}

/// Chunks of one file for one transfer, read as [`read_range`] does but
/// never blocking: a read that needs the disk runs on the blocking pool and
/// its future is kept here until it is done. One chunk in flight at most.
#[derive(Debug)]
pub struct ChunkReader {
    file: Arc<File>,
    /// `RWF_NOWAIT` works on this file; cleared at the first `EOPNOTSUPP`.
    nowait: bool,
    /// The read handed to the blocking pool, by its range.
    pending: Option<(u64, u64, JoinHandle<io::Result<Bytes>>)>,
}

impl ChunkReader {
    pub fn new(file: Arc<File>) -> ChunkReader {
        ChunkReader {
            file,
            nowait: true,
            pending: None,
        }
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// The read of `[start, end)` in progress, if one is (`Pending` was
    /// returned for it): poll it again with the same range.
    pub fn pending(&self) -> Option<(u64, u64)> {
        self.pending.as_ref().map(|&(s, e, _)| (s, e))
    }

    /// Exactly `[start, end)`: `Ready` at once when its pages are resident,
    /// else `Pending` until the blocking pool has read the rest. After a
    /// `Pending`, poll again with the same range before asking for another.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, start: u64, end: u64) -> Poll<io::Result<Bytes>> {
        if let Some((s, e, job)) = &mut self.pending {
            debug_assert_eq!(
                (*s, *e),
                (start, end),
                "a pending read is polled for its own range"
            );
            let done = ready!(std::pin::Pin::new(job).poll(cx));
            self.pending = None;
            return Poll::Ready(done.unwrap_or_else(|e| Err(io::Error::other(e))));
        }
        let want = end.saturating_sub(start) as usize;
        let mut buf = BytesMut::with_capacity(want);
        if self.nowait {
            match read_resident(&self.file, start, &mut buf, want) {
                Ok(Resident::All) => return Poll::Ready(Ok(buf.freeze())),
                Ok(Resident::Partly) => {}
                Ok(Resident::Unsupported) => self.nowait = false,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let file = Arc::clone(&self.file);
        let job = tokio::task::spawn_blocking(move || {
            read_rest(&file, start, &mut buf, want)?;
            Ok(buf.freeze())
        });
        self.pending = Some((start, end, job));
        self.poll_read(cx, start, end)
    }
}

/// How much of a read the page cache could answer.
#[derive(Debug, PartialEq, Eq)]
enum Resident {
    All,
    /// The rest needs the disk.
    Partly,
    /// The file system does not take `RWF_NOWAIT`: nothing was read.
    Unsupported,
}

/// Whether every page of `[start, start + len)` of `file` is in the page
/// cache, so that sending it (`sendfile`) will not wait for the disk.
/// Asked of `cachestat(2)` (Linux 6.5); where that is missing, a read of
/// the range's first and last byte that may not wait stands in for it.
pub fn resident(file: &File, start: u64, len: u64) -> bool {
    if len == 0 {
        return true;
    }
    if let Some(cached) = cached_pages(file, start, len) {
        let page = PAGE.get_or_init(|| rustix::param::page_size() as u64);
        let pages = (start + len).div_ceil(*page) - start / page;
        return cached >= pages;
    }
    let mut probe = BytesMut::with_capacity(1);
    [start, start + len - 1].into_iter().all(|at| {
        probe.clear();
        matches!(read_resident(file, at, &mut probe, 1), Ok(Resident::All))
    })
}

/// Asks the kernel to read `[start, start + len)` of `file` into the page
/// cache, without waiting for the data. For the blocking pool: it may wait
/// for the file system to find the blocks. A range one page of which was
/// evicted (memory pressure, or a host reclaiming a VM's idle pages) would
/// otherwise send every later step of a hit to the blocking pool too.
pub fn prefetch(file: &File, start: u64, len: u64) {
    if let Some(len) = std::num::NonZeroU64::new(len) {
        // Advice only: a file system that ignores it is served as before.
        let _ = rustix::fs::fadvise(file, start, Some(len), rustix::fs::Advice::WillNeed);
    }
}

/// The same on every architecture (syscalls added since 5.x share one
/// table); libc does not name it for all of them yet.
const SYS_CACHESTAT: libc::c_long = 451;
static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
/// Cleared at the first `ENOSYS` (this kernel has no `cachestat`) or
/// `EPERM` (a seccomp filter older than it, as systemd's
/// `SystemCallFilter=@system-service` of Debian 12).
static CACHESTAT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// `cachestat(2)`'s count of cached pages in the range, `None` when the
/// kernel cannot say.
fn cached_pages(file: &File, start: u64, len: u64) -> Option<u64> {
    use std::sync::atomic::Ordering;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    if !CACHESTAT.load(Ordering::Relaxed) {
        return None;
    }
    let range = Range { off: start, len };
    let mut stat = Stat::default();
    // SAFETY: cachestat reads `range` and writes one `Stat`, both live
    // locals laid out as the kernel's structs; flags must be 0.
    let r = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0u32,
        )
    };
    if r == 0 {
        return Some(stat.nr_cache);
    }
    if matches!(
        io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM)
    ) {
        CACHESTAT.store(false, Ordering::Relaxed);
    }
    None
}

/// Fills `buf` to `want` bytes, read from offset `start`, with what is in
/// the page cache, without waiting for the disk.
fn read_resident(file: &File, start: u64, buf: &mut BytesMut, want: usize) -> io::Result<Resident> {
    while buf.len() < want {
        let done = buf.len();
        let spare = &mut buf.spare_capacity_mut()[..want - done];
        let iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        let offset = (start + done as u64) as libc::off_t;
        // SAFETY: one iovec over the spare capacity, which outlives the
        // call; the kernel writes at most `iov_len` bytes into it.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(Resident::Partly),
                Some(libc::EINTR) => continue,
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) if done == 0 => return Ok(Resident::Unsupported),
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => return Ok(Resident::Partly),
                _ => return Err(e),
            }
        }
        if n == 0 {
            return Err(shrank());
        }
        // SAFETY: preadv2 initialised the first `n` bytes of the spare
        // capacity.
        unsafe { buf.set_len(done + n as usize) };
    }
    Ok(Resident::All)
}

/// Fills `buf` to `want` bytes, read from offset `start`, waiting for the
/// disk (off the runtime workers).
fn read_rest(file: &File, start: u64, buf: &mut BytesMut, want: usize) -> io::Result<()> {
    while buf.len() < want {
        let done = buf.len();
        let offset = start + done as u64;
        // Read into uninitialised capacity: zeroing the buffer first would
        // cost as much as a page-cache read of it.
        let spare = &mut buf.spare_capacity_mut()[..want - done];
        match rustix::io::pread(file, spare, offset) {
            Ok(([], _)) => return Err(shrank()),
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
    Ok(())
}

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "cached file shrank while being served",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file of `len` bytes on disk (`/tmp` may be a tmpfs, whose pages
    /// are always resident), its pages dropped from memory when `cold`.
    fn disk_file(len: usize, cold: bool) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        f.write_all(&data).unwrap();
        f.as_file().sync_all().unwrap();
        if cold {
            rustix::fs::fadvise(f.as_file(), 0, None, rustix::fs::Advice::DontNeed).unwrap();
        }
        (f, data)
    }

    /// Reads `[start, end)` through `reader`; whether it had to wait.
    async fn read_chunk(reader: &mut ChunkReader, start: u64, end: u64) -> (Bytes, bool) {
        let mut waited = false;
        let chunk = std::future::poll_fn(|cx| {
            let poll = reader.poll_read(cx, start, end);
            waited |= poll.is_pending();
            poll
        })
        .await
        .unwrap();
        (chunk, waited)
    }

    #[tokio::test]
    async fn resident_pages_are_read_at_once() {
        let (f, data) = disk_file(3 * CHUNK, false);
        let mut reader = ChunkReader::new(Arc::new(File::open(f.path()).unwrap()));
        let (chunk, waited) = read_chunk(&mut reader, 10, 10 + CHUNK as u64).await;
        assert_eq!(chunk, &data[10..10 + CHUNK]);
        assert!(!waited, "from the page cache, on the worker");
    }

    #[tokio::test]
    async fn pages_not_in_memory_are_read_on_the_blocking_pool() {
        let (f, data) = disk_file(3 * CHUNK, true);
        let file = Arc::new(File::open(f.path()).unwrap());
        let mut probe = BytesMut::with_capacity(CHUNK);
        let cold = read_resident(&file, CHUNK as u64, &mut probe, CHUNK).unwrap() == Resident::Partly;
        let mut reader = ChunkReader::new(file);
        let mut got = Vec::new();
        let mut waited = false;
        for start in (0..data.len()).step_by(CHUNK) {
            let end = (start + CHUNK).min(data.len());
            let (chunk, w) = read_chunk(&mut reader, start as u64, end as u64).await;
            got.extend_from_slice(&chunk);
            waited |= w;
        }
        assert_eq!(got, data);
        if cold {
            assert!(waited, "a read needing the disk left the worker");
        } else {
            eprintln!("the file system keeps the pages resident: only correctness was checked");
        }
    }

    #[tokio::test]
    async fn without_nowait_every_read_goes_to_the_blocking_pool() {
        let (f, data) = disk_file(CHUNK + 7, false);
        let mut reader = ChunkReader::new(Arc::new(File::open(f.path()).unwrap()));
        reader.nowait = false;
        let (chunk, waited) = read_chunk(&mut reader, 3, CHUNK as u64 + 7).await;
        assert_eq!(chunk, &data[3..]);
        assert!(waited);
        assert!(reader.pending().is_none());
    }

    #[tokio::test]
    async fn a_cold_file_that_shrank_is_an_error() {
        let (f, _) = disk_file(1000, true);
        let mut reader = ChunkReader::new(Arc::new(File::open(f.path()).unwrap()));
        let got = std::future::poll_fn(|cx| reader.poll_read(cx, 0, 2000)).await;
        assert_eq!(got.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn residency_is_known_per_range() {
        let (f, _) = disk_file(4 * CHUNK, false);
        let file = File::open(f.path()).unwrap();
        assert!(resident(&file, 0, 4 * CHUNK as u64), "just written");
        assert!(resident(&file, 5, 0));
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        let mut probe = BytesMut::with_capacity(1);
        if read_resident(&file, 0, &mut probe, 1).unwrap() == Resident::Partly {
            assert!(!resident(&file, 0, 4 * CHUNK as u64), "dropped from memory");
            read_range(&file, 0, CHUNK as u64).unwrap();
            assert!(resident(&file, 0, CHUNK as u64 / 2));
        } else {
            eprintln!("the file system keeps the pages resident: nothing to see");
        }
    }

    #[test]
    fn a_prefetched_range_comes_back_into_memory() {
        let (f, _) = disk_file(4 * CHUNK, true);
        let file = File::open(f.path()).unwrap();
        if resident(&file, CHUNK as u64, 2 * CHUNK as u64) {
            eprintln!("the file system keeps the pages resident: nothing to see");
            return;
        }
        prefetch(&file, CHUNK as u64, 2 * CHUNK as u64);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !resident(&file, CHUNK as u64, 2 * CHUNK as u64) {
            assert!(
                std::time::Instant::now() < deadline,
                "the prefetched range never came back"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn read_range_reads_exactly() {
        let data: Vec<u8> = (0..5000).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        let file = File::open(f.path()).unwrap();
        assert_eq!(read_range(&file, 100, 4100).unwrap(), &data[100..4100]);
    }
}
