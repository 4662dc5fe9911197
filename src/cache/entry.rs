//! Writing one cache entry: the commit protocol of ARCHITECTURE.md.
//!
//! | step   | solid (`.deb`, by-hash, …)                         | volatile (`InRelease`, `Packages`, …)            |
//! |--------|----------------------------------------------------|--------------------------------------------------|
//! | start  | `.head` without `Content-Length` (atomic), then a new data inode renamed into place | a temporary file in `_debcache/tmp` (or beside the target when on another device) |
//! | body   | appended in place                                  | appended to the temporary file                   |
//! | resume | the partial file is opened and appended to         | never: always a new download                     |
//! | finish | `fdatasync`, `.head` with `Content-Length` (temp, fsync, rename), fsync the directory | `fdatasync`, rename the data, then the new `.head`, fsync the directory |
//!
//! A crash at any step leaves either the previous complete pair, or a
//! `.head` without `Content-Length` that nothing serves as complete.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use super::key::CacheKey;
use super::meta::Head;
use super::storage::{Dir, Storage};

/// Where the bytes of an entry being written live.
#[derive(Debug)]
enum Place {
    /// At the final name (solid).
    InPlace,
    /// A temporary file to rename at the end (volatile).
    Temp { dir: Dir, name: String },
}

/// One entry being written.
#[derive(Debug)]
pub struct EntryWriter {
    key: CacheKey,
    dir: Dir,
    file: Arc<File>,
    place: Place,
    len: u64,
    head: Head,
}

impl EntryWriter {
    /// A solid file from its first byte: the sidecar first says "incomplete",
    /// then a fresh data inode takes the name (never truncating the old one,
    /// which followers of an earlier download may still be reading).
    pub fn start_solid(storage: &Storage, key: &CacheKey, head: Head) -> io::Result<EntryWriter> {
        let dir = storage.parent_dir(key)?;
        let name = key.file_name();
        storage.write_atomic(
            &dir,
            &format!("{name}.head"),
            incomplete(&head).render().as_bytes(),
            false,
        )?;
        let (file, temp) = storage.create_temp(&dir)?;
        dir.rename(&temp, &dir, name)?;
        Ok(EntryWriter {
            key: key.clone(),
            dir,
            file: Arc::new(file),
            place: Place::InPlace,
            len: 0,
            head,
        })
    }

    /// Continues a partial solid file of `len` bytes.
    pub fn resume_solid(storage: &Storage, key: &CacheKey, head: Head, len: u64) -> io::Result<EntryWriter> {
        let dir = storage.parent_dir(key)?;
        let file = storage.open_data_rw(key)?;
        let on_disk = file.metadata()?.len();
        if on_disk != len {
            return Err(io::Error::other(format!(
                "partial file is {on_disk} bytes, expected {len}"
            )));
        }
        Ok(EntryWriter {
            key: key.clone(),
            dir,
            file: Arc::new(file),
            place: Place::InPlace,
            len,
            head,
        })
    }

    /// A volatile file: downloaded aside, renamed into place when whole.
    pub fn start_volatile(storage: &Storage, key: &CacheKey, head: Head) -> io::Result<EntryWriter> {
        let dir = storage.parent_dir(key)?;
        let tmp = storage.tmp_dir()?;
        // A rename cannot cross devices (a repository on its own disk): then
        // the temporary file goes beside its target.
        let temp_dir = if tmp.device()? == dir.device()? {
            tmp
        } else {
            storage.parent_dir(key)?
        };
        let (file, name) = storage.create_temp(&temp_dir)?;
        Ok(EntryWriter {
            key: key.clone(),
            dir,
            file: Arc::new(file),
            place: Place::Temp { dir: temp_dir, name },
            len: 0,
            head,
        })
    }

    /// Reserves the space of the announced length up front (`fallocate`
    /// keeping the size), so a full disk shows before any client got a byte.
    pub fn reserve(&self, total: u64) -> io::Result<()> {
        use rustix::fs::{fallocate, FallocateFlags};
        match fallocate(&*self.file, FallocateFlags::KEEP_SIZE, 0, total) {
            Ok(()) | Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::NOSYS) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The data file, for followers to read as it grows.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends `pieces` in order, on the blocking pool: a write may wait
    /// for the disk (dirty pages over the limit, a slow device), which on a
    /// runtime worker would stall every client of that worker.
    pub async fn append(&mut self, pieces: Vec<Bytes>) -> io::Result<()> {
        let file = Arc::clone(&self.file);
        let at = self.len;
        let written = tokio::task::spawn_blocking(move || {
            let mut offset = at;
            for piece in &pieces {
                file.write_all_at(piece, offset)?;
                offset += piece.len() as u64;
            }
            Ok(offset - at)
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))?;
        self.len += written;
        Ok(())
    }

    /// Makes the entry complete and durable; returns the final head.
    pub fn finish(mut self, storage: &Storage) -> io::Result<Head> {
        self.file.sync_data()?;
        let name = self.key.file_name().to_string();
        if let Place::Temp { dir, name: temp } = &self.place {
            match dir.rename(temp, &self.dir, &name) {
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => self.copy_into_place(storage, &name)?,
                other => other?,
            }
        }
        self.head.content_length = Some(self.len);
        self.head.expected_length = None;
        storage.write_atomic(
            &self.dir,
            &format!("{name}.head"),
            self.head.render().as_bytes(),
            true,
        )?;
        self.dir.sync()?;
        self.place = Place::InPlace;
        Ok(self.head.clone())
    }

    /// Removes what was written: the bytes are not the file.
    pub fn discard(self) -> io::Result<()> {
        if let Place::InPlace = self.place {
            let name = self.key.file_name();
            for file in [name.to_string(), format!("{name}.head")] {
                match self.dir.remove(&file) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        // A temporary file goes on drop.
        Ok(())
    }

    /// The rename crossed devices after all (a bind mount): copy beside the
    /// target, then rename that.
    fn copy_into_place(&self, storage: &Storage, name: &str) -> io::Result<()> {
        let (copy, temp) = storage.create_temp(&self.dir)?;
        let mut offset = 0;
        let mut buf = vec![0u8; 256 * 1024];
        while offset < self.len {
            let n = self.file.read_at(&mut buf, offset)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            copy.write_all_at(&buf[..n], offset)?;
            offset += n as u64;
        }
        copy.sync_data()?;
        self.dir.rename(&temp, &self.dir, name)
    }
}

impl Drop for EntryWriter {
    /// An unfinished volatile download leaves nothing behind; an unfinished
    /// solid one stays partial, to be resumed.
    fn drop(&mut self) {
        if let Place::Temp { dir, name } = &self.place {
            let _ = dir.remove(name);
        }
    }
}

/// The sidecar written while a solid file is incomplete.
fn incomplete(head: &Head) -> Head {
    Head {
        content_length: None,
        expected_length: head.expected_length.or(head.content_length),
        ..head.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Cache, Lookup};
    use std::fs;

    fn setup() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        (dir, storage)
    }

    fn head(expected: u64) -> Head {
        Head {
            expected_length: Some(expected),
            last_modified: Some("Sun, 22 Nov 2026 02:58:26 GMT".into()),
            etag: Some("\"e1\"".into()),
            original_source: Some("http://m.example/d/a.deb".into()),
            ..Head::default()
        }
    }

    fn read_head(root: &std::path::Path, rel: &str) -> Head {
        Head::parse(&fs::read(root.join(format!("{rel}.head"))).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_solid_entry_is_incomplete_until_finished() {
        let (root, storage) = setup();
        let key = CacheKey::parse("repo/pool/a.deb").unwrap();
        let mut w = EntryWriter::start_solid(&storage, &key, head(6)).unwrap();
        w.append(vec![Bytes::from_static(b"abc")]).await.unwrap();
        let on_disk = read_head(root.path(), "repo/pool/a.deb");
        assert_eq!((on_disk.content_length, on_disk.expected_length), (None, Some(6)));
        assert_eq!(fs::read(root.path().join("repo/pool/a.deb")).unwrap(), b"abc");
        drop(w);
        let mut w = EntryWriter::resume_solid(&storage, &key, head(6), 3).unwrap();
        w.append(vec![Bytes::from_static(b"def")]).await.unwrap();
        let final_head = w.finish(&storage).unwrap();
        assert_eq!(final_head.content_length, Some(6));
        let on_disk = read_head(root.path(), "repo/pool/a.deb");
        assert_eq!((on_disk.content_length, on_disk.expected_length), (Some(6), None));
        assert_eq!(on_disk.etag.as_deref(), Some("\"e1\""));
        let config = crate::config::load(crate::config::ConfigDir::Embedded, &[])
            .config
            .unwrap();
        assert!(matches!(
            Cache::new(
                storage,
                crate::upstream::Upstream::new(&config.upstream, &config.remaps).unwrap(),
                &config.caching,
                Arc::new(crate::stats::Stats::new([])),
            )
            .lookup(&key)
            .unwrap(),
            Lookup::Complete(_)
        ));
    }

    #[tokio::test]
    async fn restarting_a_solid_file_never_truncates_the_old_inode() {
        let (root, storage) = setup();
        let key = CacheKey::parse("repo/pool/a.deb").unwrap();
        let mut first = EntryWriter::start_solid(&storage, &key, head(3)).unwrap();
        first.append(vec![Bytes::from_static(b"old")]).await.unwrap();
        let reader = Arc::clone(first.file());
        let mut second = EntryWriter::start_solid(&storage, &key, head(3)).unwrap();
        second.append(vec![Bytes::from_static(b"new")]).await.unwrap();
        let mut buf = [0u8; 3];
        reader.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(
            &buf, b"old",
            "a follower of the first download still reads its bytes"
        );
        second.finish(&storage).unwrap();
        assert_eq!(fs::read(root.path().join("repo/pool/a.deb")).unwrap(), b"new");
    }

    #[tokio::test]
    async fn a_volatile_entry_replaces_the_old_pair_only_at_the_end() {
        let (root, storage) = setup();
        let key = CacheKey::parse("repo/dists/x/InRelease").unwrap();
        let mut w = EntryWriter::start_volatile(&storage, &key, head(3)).unwrap();
        w.append(vec![Bytes::from_static(b"v1!")]).await.unwrap();
        assert!(
            !root.path().join("repo/dists/x/InRelease").exists(),
            "nothing at the name while downloading"
        );
        w.finish(&storage).unwrap();
        let mut w = EntryWriter::start_volatile(&storage, &key, head(4)).unwrap();
        w.append(vec![Bytes::from_static(b"v2!!")]).await.unwrap();
        assert_eq!(
            fs::read(root.path().join("repo/dists/x/InRelease")).unwrap(),
            b"v1!"
        );
        w.finish(&storage).unwrap();
        assert_eq!(
            fs::read(root.path().join("repo/dists/x/InRelease")).unwrap(),
            b"v2!!"
        );
        assert_eq!(
            read_head(root.path(), "repo/dists/x/InRelease").content_length,
            Some(4)
        );
        assert_eq!(
            fs::read_dir(root.path().join("_debcache/tmp")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn an_abandoned_volatile_download_leaves_nothing() {
        let (root, storage) = setup();
        let key = CacheKey::parse("repo/dists/x/Release").unwrap();
        let mut w = EntryWriter::start_volatile(&storage, &key, head(3)).unwrap();
        w.append(vec![Bytes::from_static(b"abc")]).await.unwrap();
        drop(w);
        assert_eq!(
            fs::read_dir(root.path().join("_debcache/tmp")).unwrap().count(),
            0
        );
        assert!(!root.path().join("repo/dists/x/Release").exists());
    }

    #[tokio::test]
    async fn leftovers_of_a_crash_are_swept() {
        let (root, storage) = setup();
        let key = CacheKey::parse("repo/dists/x/Release").unwrap();
        let mut w = EntryWriter::start_volatile(&storage, &key, head(3)).unwrap();
        w.append(vec![Bytes::from_static(b"abc")]).await.unwrap();
        std::mem::forget(w);
        assert_eq!(storage.sweep_tmp().unwrap(), 1);
        assert_eq!(
            fs::read_dir(root.path().join("_debcache/tmp")).unwrap().count(),
            0
        );
    }
}
