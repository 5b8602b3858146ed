//! Files: atomic writes with the right mode whatever the umask, durable batches, reads that name
//! the file on error, and the clean-up of temporary files a killed run left behind. Every
//! frankenetes crate writes its files through these.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use zeroize::Zeroizing;

use crate::Error;

/// Mode of private keys.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of everything else.
pub const PUBLIC_MODE: u32 = 0o644;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` through a temporary file in the same directory and a rename,
/// so a reader sees the old file or the new one, never half of one. The temporary file is
/// created with `mode` already set: a key is never readable by others, not even briefly.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let err = |source: io::Error| Error::Write {
        path: path.to_owned(),
        source,
    };
    let (tmp, mut f) = create_temp(path, mode).map_err(err)?;
    let result = (|| {
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Creates the temporary file `path` is written through: in the same directory (created if
/// needed, so the rename stays on one filesystem), a name no other writer uses, and `mode` set
/// at creation and again exactly (the umask may have cleared bits).
fn create_temp(path: &Path, mode: u32) -> io::Result<(PathBuf, fs::File)> {
    let parent = parent_of(path);
    create_dirs(parent, &mut |_| {})?;
    create_temp_in(parent, path, mode)
}

/// [`create_temp`] once `parent` is known to exist.
fn create_temp_in(parent: &Path, path: &Path, mode: u32) -> io::Result<(PathBuf, fs::File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(
        ".{name}{TEMP_MARK}{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    if let Err(e) = f.set_permissions(fs::Permissions::from_mode(mode)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((tmp, f))
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes many files, each atomically (temporary file + rename, mode set at creation), and
/// makes them durable before returning. After a crash a file is either the old one or the
/// complete new one. On an error before the renames, nothing is renamed and every temporary
/// file is removed.
///
/// The order: write the temporary files, a few hundred at a time (each directory created
/// once); make their contents durable; once every one is on disk, rename them all; then make
/// the renames durable. How depends on the size of the batch:
///
/// - **Up to [`SYNCFS_FROM`] files**, exactly those files and directories are synced, not the
///   whole filesystem (a `syncfs` would also wait for every other process's dirty pages):
///   write-back of each chunk is started at once (so block allocation and the journal commit
///   are shared), then the files are `fdatasync`ed from a few threads (each call waits on the
///   device, so overlapping them is what saves time; the block layer merges the flushes);
///   after the renames, each directory a file was renamed into and the parent of each
///   directory this call created is `fsync`ed, also overlapped.
/// - **From [`SYNCFS_FROM`] files on** (a bundle of hundreds of nodes is tens of thousands of
///   files and thousands of directories), one `syncfs` of each filesystem written to before the
///   renames and one after: a filesystem writes back and commits tens of thousands of small
///   files in one pass far faster than it answers as many `fdatasync`s, each a journal commit
///   and a cache flush, and that outweighs waiting for other writers' dirty pages. Measured
///   in `benches/README.md`. Outside Linux, where there is no `syncfs`, the per-file path.
pub fn write_batch(files: &[(PathBuf, &[u8], u32)]) -> Result<(), Error> {
    write_batch_with(
        files,
        files.len() >= SYNCFS_FROM && cfg!(target_os = "linux"),
    )
}

/// Files from which [`write_batch`] makes a batch durable with `syncfs` instead of a sync per
/// file and directory.
pub const SYNCFS_FROM: usize = 2048;

/// [`write_batch`], choosing how to sync: `whole_fs` is the `syncfs` path.
fn write_batch_with(files: &[(PathBuf, &[u8], u32)], whole_fs: bool) -> Result<(), Error> {
    let mut temps: Vec<(PathBuf, &Path)> = Vec::with_capacity(files.len());
    // Directories whose entries must be made durable, each once.
    let mut to_sync: Vec<PathBuf> = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut parents: HashSet<&Path> = HashSet::new();
    let result = (|| {
        // A few hundred files open at a time, so thousands stay under a 1024-descriptor limit.
        for chunk in files.chunks(OPEN_AT_ONCE) {
            let mut open: Vec<(fs::File, &Path)> = Vec::with_capacity(chunk.len());
            for (path, contents, mode) in chunk {
                let err = |source: io::Error| Error::Write {
                    path: path.clone(),
                    source,
                };
                let parent = parent_of(path);
                if parents.insert(parent) {
                    create_dirs(parent, &mut |d| {
                        if seen.insert(d.to_owned()) {
                            to_sync.push(d.to_owned());
                        }
                    })
                    .map_err(err)?;
                }
                let (tmp, mut f) = create_temp_in(parent, path, *mode).map_err(err)?;
                temps.push((tmp, path));
                f.write_all(contents).map_err(err)?;
                open.push((f, path));
            }
            if whole_fs {
                continue;
            }
            for (f, _) in &open {
                start_writeback(f);
            }
            for_each_overlapped(&open, |(f, path)| {
                f.sync_data().map_err(|source| Error::Write {
                    path: path.to_path_buf(),
                    source,
                })
            })?;
        }
        let filesystems = if whole_fs {
            let filesystems = one_dir_per_filesystem(&to_sync)?;
            sync_filesystems(&filesystems)?;
            filesystems
        } else {
            Vec::new()
        };
        for (tmp, path) in &temps {
            fs::rename(tmp, path).map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })?;
        }
        if whole_fs {
            sync_filesystems(&filesystems)
        } else {
            for_each_overlapped(&to_sync, |dir| sync_dir(dir))
        }
    })();
    if result.is_err() {
        for (tmp, _) in &temps {
            let _ = fs::remove_file(tmp);
        }
    }
    result
}

/// One open directory on each filesystem among `dirs` (by device number), to `syncfs`.
fn one_dir_per_filesystem(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, fs::File)>, Error> {
    use std::os::unix::fs::MetadataExt;
    let mut devices = HashSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let err = |source: io::Error| Error::Write {
            path: dir.clone(),
            source,
        };
        let f = fs::File::open(dir).map_err(err)?;
        if devices.insert(f.metadata().map_err(err)?.dev()) {
            out.push((dir.clone(), f));
        }
    }
    Ok(out)
}

/// `syncfs` on each filesystem: everything written to it so far is durable when it returns.
fn sync_filesystems(filesystems: &[(PathBuf, fs::File)]) -> Result<(), Error> {
    for (dir, f) in filesystems {
        #[cfg(target_os = "linux")]
        nix::unistd::syncfs(f).map_err(|e| Error::Write {
            path: dir.clone(),
            source: e.into(),
        })?;
        #[cfg(not(target_os = "linux"))]
        let _ = (dir, f);
    }
    Ok(())
}

/// Creates `dir` and its missing ancestors, each [`DIR_MODE`] exactly (not widened by a umask
/// of 000, not narrowed by 077: an overlay's `etc/` must stay readable on the machine), and
/// reports to `sync` each directory whose entries change or must be durable: `dir` itself
/// (files go into it) and the parent of every directory created here.
fn create_dirs(dir: &Path, sync: &mut impl FnMut(&Path)) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d);
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p,
            _ => break, // a relative path's first component: its parent is `.`
        }
    }
    for m in missing.iter().rev() {
        match fs::DirBuilder::new().mode(DIR_MODE).create(m) {
            Ok(()) => fs::set_permissions(m, fs::Permissions::from_mode(DIR_MODE))?,
            // Made by a concurrent writer in between: theirs to set.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && m.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    sync(dir);
    for m in missing {
        sync(parent_of(m));
    }
    Ok(())
}

/// Creates `dir` and its missing ancestors, each [`DIR_MODE`] whatever the umask.
pub fn create_dir_for(dir: &Path) -> Result<(), Error> {
    create_dirs(dir, &mut |_| {}).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Mode of the directories this module creates for files.
pub const DIR_MODE: u32 = 0o755;
/// Mode of directories that hold secrets and only their owner may list or enter.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` (and missing ancestors, [`DIR_MODE`]) as a private directory: mode
/// [`PRIVATE_DIR_MODE`] exactly, whatever the umask, also when it exists already with a looser
/// mode (a key directory someone made 0755 is narrowed). Returns whether its mode changed.
pub fn ensure_private_dir(dir: &Path) -> Result<bool, Error> {
    let err = |source: io::Error| Error::Write {
        path: dir.to_owned(),
        source,
    };
    create_dirs(dir, &mut |_| {}).map_err(err)?;
    let mode = fs::metadata(dir).map_err(err)?.permissions().mode() & 0o7777;
    if mode == PRIVATE_DIR_MODE {
        return Ok(false);
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE)).map_err(err)?;
    Ok(true)
}

/// What marks a temporary file of [`write_atomic`] and [`write_batch`]:
/// `.<name>.tmp.<pid>.<n>`.
const TEMP_MARK: &str = ".tmp.";

/// The PID of the process that made the file called `name`, if it is one of the temporary
/// files of [`write_atomic`]/[`write_batch`] (`.<name>.tmp.<pid>.<n>`).
pub fn temp_owner(name: &str) -> Option<i32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, rest) = name.rsplit_once(TEMP_MARK)?;
    let (pid, n) = rest.split_once('.')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Removes, under `root` (recursively, not following symlinks), every temporary file of
/// [`write_atomic`]/[`write_batch`] whose writer is gone: what a run killed half-way through a
/// write left (they may hold private keys). Files of a writer that still runs (this process
/// included) are left alone.
/// Returns the files removed. A missing `root` has none.
pub fn remove_stale_temps(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Read { path: dir, source }),
        };
        for e in entries {
            let e = e.map_err(|source| Error::Read {
                path: dir.clone(),
                source,
            })?;
            let path = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && let Some(pid) = e.file_name().to_str().and_then(temp_owner)
                && !process_alive(pid)
            {
                match fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Write { path, source }),
                }
            }
        }
    }
    removed.sort();
    Ok(removed)
}

/// Whether a process exists and is not a zombie (Linux `/proc`; elsewhere, assumed alive, so
/// nothing is removed that might be in use).
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Files [`write_batch`] keeps open at once.
const OPEN_AT_ONCE: usize = 256;

/// Runs `op` on every item, from up to [`IO_THREADS`] threads when there are enough items to
/// be worth a thread: for calls that mostly wait on the disk (`fsync`), not for CPU work. The
/// first error is returned; the other threads stop taking new items.
fn for_each_overlapped<T: Sync>(
    items: &[T],
    op: impl Fn(&T) -> Result<(), Error> + Sync,
) -> Result<(), Error> {
    let threads = IO_THREADS.min(items.len() / ITEMS_PER_THREAD);
    if threads <= 1 {
        return items.iter().try_for_each(op);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || -> Result<(), Error> {
        while !failed.load(Ordering::Relaxed) {
            let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            if let Err(e) = op(item) {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    };
    std::thread::scope(|s| {
        // A thread the system refuses (process or cgroup limits) only means less overlap.
        let helpers: Vec<_> = (1..threads)
            .map_while(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
            .collect();
        let mut result = work();
        for h in helpers {
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            result = result.and(r);
        }
        result
    })
}

/// Threads [`for_each_overlapped`] uses at most: enough to keep a disk's queue busy while each
/// waits on its own `fsync`; more buys nothing on the SSDs and virtual disks we measured.
const IO_THREADS: usize = 8;
/// Items below which another thread costs more than it saves.
const ITEMS_PER_THREAD: usize = 4;

/// Asks the kernel to start writing `f`'s pages now, without waiting: on Linux,
/// `POSIX_FADV_DONTNEED` starts write-back of the dirty pages (the safe stand-in for
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which no safe binding offers). Only a hint: the
/// `fdatasync` after it is what makes the data durable, so where it does nothing, nothing is
/// lost but time.
fn start_writeback(f: &fs::File) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
        let _ = posix_fadvise(f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = f;
}

/// `fsync` on a directory, so renames into it survive a crash.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    let err = |source: io::Error| Error::Write {
        path: dir.to_owned(),
        source,
    };
    fs::File::open(dir).map_err(err)?.sync_all().map_err(err)
}

/// Reads a file into memory that is zeroized when dropped (it may hold a key); `Ok(None)`
/// when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads a UTF-8 file; `Ok(None)` when it does not exist.
pub fn read_text_optional(path: &Path) -> Result<Option<String>, Error> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::NotText {
                path: path.to_owned(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// [`write_atomic`] unless `path` already holds exactly `contents` with `mode`. Returns whether
/// it wrote.
pub fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> Result<bool, Error> {
    let same_mode = fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
    if same_mode && read_optional(path)?.is_some_and(|old| old.as_slice() == contents) {
        return Ok(false);
    }
    write_atomic(path, contents, mode)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn overlapped_runs_every_item_once() {
        let seen: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
        let items: Vec<usize> = (0..100).collect();
        for_each_overlapped(&items, |&i| {
            seen[i].fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
        assert!(seen.iter().all(|n| n.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn overlapped_returns_the_error_and_stops_taking_items() {
        let items: Vec<usize> = (0..10_000).collect();
        let done = AtomicUsize::new(0);
        let err = for_each_overlapped(&items, |&i| {
            if i == 3 {
                return Err(Error::Write {
                    path: PathBuf::from(format!("item-{i}")),
                    source: io::Error::other("disk on fire"),
                });
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
            done.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(&err, Error::Write { path, .. } if path == Path::new("item-3")));
        // The threads stop after their current item once one failed: without that, all 9999
        // others would run. The bound leaves the failing thread tens of ms of preemption.
        let done = done.load(Ordering::Relaxed);
        assert!(done < 5_000, "{done} items ran after the failure");
    }

    /// Both ways of making a batch durable: a sync per file and directory, and `syncfs`.
    const STRATEGIES: [bool; 2] = [false, true];

    #[test]
    fn batch_writes_modes_and_leaves_no_temporary_files() {
        for whole_fs in STRATEGIES {
            batch_writes_modes(whole_fs);
        }
    }

    fn batch_writes_modes(whole_fs: bool) {
        let dir = tempfile::tempdir().unwrap();
        // More files than are kept open at once, so the chunks meet.
        let n = OPEN_AT_ONCE * 2 + 48; // a multiple of 5
        let files: Vec<(PathBuf, &[u8], u32)> = (0..n)
            .map(|i| {
                let path = dir.path().join(format!("d{}/sub/f{i}", i % 5));
                let mode = if i % 2 == 0 { SECRET_MODE } else { PUBLIC_MODE };
                (path, b"contents".as_slice(), mode)
            })
            .collect();
        write_batch_with(&files, whole_fs).unwrap();
        for (path, contents, mode) in &files {
            assert_eq!(fs::read(path).unwrap(), *contents);
            assert_eq!(
                fs::metadata(path).unwrap().mode() & 0o777,
                *mode,
                "{path:?}"
            );
        }
        for d in 0..5 {
            let names: Vec<_> = fs::read_dir(dir.path().join(format!("d{d}/sub")))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names.len(), n / 5, "{names:?}");
            assert!(names.iter().all(|n| !n.to_string_lossy().contains(".tmp.")));
        }
    }

    #[test]
    fn batch_failure_removes_its_temporary_files() {
        for whole_fs in STRATEGIES {
            batch_failure(whole_fs);
        }
    }

    fn batch_failure(whole_fs: bool) {
        let dir = tempfile::tempdir().unwrap();
        // A file where the second entry's directory should be: creating that directory fails.
        fs::write(dir.path().join("blocker"), b"").unwrap();
        let files: Vec<(PathBuf, &[u8], u32)> = vec![
            (dir.path().join("ok/a"), b"a", PUBLIC_MODE),
            (dir.path().join("blocker/b"), b"b", PUBLIC_MODE),
        ];
        let err = write_batch_with(&files, whole_fs).unwrap_err();
        assert!(matches!(&err, Error::Write { path, .. } if path.ends_with("blocker/b")));
        let left: Vec<_> = fs::read_dir(dir.path().join("ok")).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(!dir.path().join("ok/a").exists());
    }

    #[test]
    fn failure_in_a_later_chunk_renames_nothing_and_removes_every_temporary_file() {
        for whole_fs in STRATEGIES {
            failure_in_a_later_chunk(whole_fs);
        }
    }

    fn failure_in_a_later_chunk(whole_fs: bool) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("blocker"), b"").unwrap();
        // A full first chunk, written and synced, then a file that cannot be created.
        let mut files: Vec<(PathBuf, &[u8], u32)> = (0..OPEN_AT_ONCE + 10)
            .map(|i| {
                (
                    dir.path().join(format!("ok/f{i}")),
                    b"x".as_slice(),
                    SECRET_MODE,
                )
            })
            .collect();
        files.push((dir.path().join("blocker/late"), b"y", PUBLIC_MODE));
        let err = write_batch_with(&files, whole_fs).unwrap_err();
        assert!(matches!(&err, Error::Write { path, .. } if path.ends_with("blocker/late")));
        let left: Vec<_> = fs::read_dir(dir.path().join("ok")).unwrap().collect();
        assert!(
            left.is_empty(),
            "{} entries left, e.g. {:?}",
            left.len(),
            left.first()
        );
    }

    #[test]
    fn a_batch_over_two_filesystems_syncs_each_once() {
        // /dev/shm is a tmpfs on Linux: another filesystem than the temporary directory's
        // (unless TMPDIR is on it too, when there is one filesystem).
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            return;
        }
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir_in(shm).unwrap();
        let dirs: Vec<PathBuf> = [a.path(), b.path(), a.path(), b.path()]
            .iter()
            .flat_map(|d| [d.to_path_buf(), d.join("x")])
            .collect();
        for d in &dirs {
            fs::create_dir_all(d).unwrap();
        }
        let dev = |p: &Path| fs::metadata(p).unwrap().dev();
        let expected = if dev(a.path()) == dev(b.path()) { 1 } else { 2 };
        let filesystems = one_dir_per_filesystem(&dirs).unwrap();
        assert_eq!(filesystems.len(), expected, "{filesystems:?}");
        sync_filesystems(&filesystems).unwrap();
        // And a whole batch across both lands in both.
        let files: Vec<(PathBuf, &[u8], u32)> = vec![
            (a.path().join("n/f"), b"1", PUBLIC_MODE),
            (b.path().join("n/g"), b"2", SECRET_MODE),
        ];
        write_batch_with(&files, true).unwrap();
        assert_eq!(fs::read(a.path().join("n/f")).unwrap(), b"1");
        assert_eq!(fs::read(b.path().join("n/g")).unwrap(), b"2");
    }

    #[test]
    fn new_directories_are_reported_for_sync_with_their_parents() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("a")).unwrap();
        let mut synced = Vec::new();
        create_dirs(&root.path().join("a/b/c"), &mut |d| {
            synced.push(d.to_owned())
        })
        .unwrap();
        assert!(root.path().join("a/b/c").is_dir());
        let rel: Vec<_> = synced
            .iter()
            .map(|d| d.strip_prefix(root.path()).unwrap().to_owned())
            .collect();
        // c (files go there), c's parent b, b's parent a; not the root, which did not change.
        assert_eq!(rel, [PathBuf::from("a/b/c"), "a/b".into(), "a".into()]);
        synced.clear();
        create_dirs(&root.path().join("a/b/c"), &mut |d| {
            synced.push(d.to_owned())
        })
        .unwrap();
        assert_eq!(synced, [root.path().join("a/b/c")]);
    }
}
