//! Careful filesystem primitives: the root's permission checks, directories
//! created 0700 and files 0600, atomic replacement (tmp, fsync, rename, fsync
//! dir), appends that never follow symlinks, and flock guards.
//!
//! Nothing here follows a symlink that someone else could have planted: files
//! are opened with `O_NOFOLLOW`, directories are checked with `lstat`.
//!
//! Durability, per OS. What muxvisor acknowledges (a `send` that exits 0, a
//! state or spec file replaced) has been flushed with these helpers:
//! - Linux: `fsync(2)` of the file and of its directory ([`sync_file`],
//!   [`fsync_dir`]). On Linux fsync also flushes the drive's volatile write
//!   cache (on file systems mounted with barriers, the default), so an
//!   acknowledged write survives a power cut; [`barrier`] has nothing left
//!   to do.
//! - macOS: `fsync(2)` only hands the data to the drive, which may hold it in
//!   its cache; `F_FULLFSYNC` flushes that cache too, and costs milliseconds
//!   to tens of milliseconds. (Rust's `sync_all`/`sync_data` issue it on
//!   every call, which is why muxvisor calls `fsync` itself.) So each step
//!   is a plain fsync, and one [`barrier`] (`F_FULLFSYNC`) is the last flush
//!   before an acknowledgement: it pushes every earlier write of the file
//!   system out of the drive cache with it. An acknowledged write survives
//!   a crash of the process or the kernel on both systems, and a power cut
//!   on both, with one full flush per acknowledgement on macOS.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::ground::exit::{Exit, fail};
use crate::ground::paths::Root;

/// Make the root usable: absolute, created 0700 if missing, and refused if it
/// is a symlink, owned by someone else, or open to group/other. Creates the
/// subdirectories too. Every path under the root is built from its one
/// checked spelling ([`crate::ground::paths::root_spelling`]), never from `dir` as
/// given.
pub fn open_root(dir: &Path) -> Result<Root> {
    let cwd = if dir.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir().context("finding the current directory")?
    };
    let dir = crate::ground::paths::root_spelling(dir, &cwd);
    let root = Root::new(dir.clone());
    root.check_socket_len()?;
    if fs::symlink_metadata(&dir).is_err() {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("creating {} (parent of the root)", parent.display()))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating root {}", dir.display())),
        }
    }
    check_private_dir(&dir, "root")?;
    for sub in root.all_dirs() {
        ensure_dir(&sub)?;
    }
    Ok(root)
}

/// Refuse `dir` unless it is a real directory, owned by us, mode 0700-ish.
/// A trailing `/` or `/.` would make `lstat` follow a symlink, so the path
/// is checked without them too, and both spellings must be one directory.
pub fn check_private_dir(dir: &Path, what: &str) -> Result<()> {
    let md =
        fs::symlink_metadata(dir).with_context(|| format!("reading {what} {}", dir.display()))?;
    check_private_dir_md(dir, what, md)
}

/// [`check_private_dir`] with `dir`'s `lstat` already taken.
fn check_private_dir_md(dir: &Path, what: &str, md: fs::Metadata) -> Result<()> {
    let bare: PathBuf = dir.components().collect();
    let bare_md = if bare.as_os_str() == dir.as_os_str() {
        md.clone()
    } else {
        fs::symlink_metadata(&bare).with_context(|| format!("reading {what} {}", bare.display()))?
    };
    if md.file_type().is_symlink()
        || bare_md.file_type().is_symlink()
        || (md.dev(), md.ino()) != (bare_md.dev(), bare_md.ino())
    {
        bail!(
            "{what} {} is a symlink; muxvisor refuses to follow it. Use the real directory \
             with --root, or remove the link",
            dir.display()
        );
    }
    if !md.is_dir() {
        bail!("{what} {} is not a directory; remove it or choose another --root", dir.display());
    }
    let euid = euid();
    if md.uid() != euid {
        bail!(
            "{what} {} is owned by uid {}, not by you (uid {euid}); use a root you own",
            dir.display(),
            md.uid()
        );
    }
    let mode = md.mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{what} {} has mode {mode:04o}, open to group or others; run `chmod 700 {}`",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// This process's effective uid, asked of the kernel once: muxvisor never
/// changes it, and every ownership check (each directory of the root, each
/// queue entry) compares with it.
pub fn euid() -> u32 {
    static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *EUID.get_or_init(|| nix::unistd::geteuid().as_raw())
}

/// Create `dir` 0700 if missing; refuse it if it is not a private directory.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    ensure_dir_created(dir).map(|_| ())
}

/// [`ensure_dir`], saying whether this call created the directory.
pub fn ensure_dir_created(dir: &Path) -> Result<bool> {
    // The common case, every command: it exists (one `lstat`, no `mkdir`).
    if let Ok(md) = fs::symlink_metadata(dir) {
        return check_private_dir_md(dir, "directory", md).map(|()| false);
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            check_private_dir(dir, "directory").map(|()| false)
        }
        Err(e) => Err(e).with_context(|| format!("creating directory {}", dir.display())),
    }
}

/// `fsync(2)` of a file, data and metadata (see the module header): Linux
/// `sync_all`; macOS a plain `fsync`, not Rust's `F_FULLFSYNC`.
pub fn sync_file(f: &File) -> io::Result<()> {
    #[cfg(target_os = "macos")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: fsync on a descriptor we own.
        if unsafe { libc::fsync(f.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "macos"))]
    f.sync_all()
}

/// Like [`sync_file`] for a file whose size and times need not be durable
/// (Linux `fdatasync`; macOS has no cheaper call than fsync).
pub fn sync_file_data(f: &File) -> io::Result<()> {
    #[cfg(target_os = "macos")]
    return sync_file(f);
    #[cfg(not(target_os = "macos"))]
    f.sync_data()
}

/// The final flush before acknowledging a write: on macOS one `F_FULLFSYNC`,
/// which empties the drive's write cache (falling back to fsync on file
/// systems that do not support it); a no-op on Linux, where fsync already
/// did that. Call it once, after the last [`sync_file`] / [`fsync_dir`].
pub fn barrier(f: &File) -> io::Result<()> {
    #[cfg(target_os = "macos")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl(F_FULLFSYNC) on a descriptor we own.
        if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_FULLFSYNC) } == -1 {
            // Network and some external file systems refuse it.
            return sync_file(f);
        }
        Ok(())
    }
    #[cfg(not(target_os = "macos"))]
    {
        let _ = f;
        Ok(())
    }
}

fn open_dir(dir: &Path) -> Result<File> {
    File::open(dir).with_context(|| format!("opening {} to fsync it", dir.display()))
}

/// Set the modification time of `path` to `t`, leaving its access time,
/// and never through a symlink (one `utimensat`; no file is opened).
pub fn set_modified(path: &Path, t: std::time::SystemTime) -> Result<()> {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::UTIME_OMIT,
        &TimeSpec::from_duration(since),
        UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("setting the modification time of {}", path.display()))
}

/// fsync a directory so that entries created or renamed in it are durable
/// (a plain fsync on every OS; see [`fsync_dir_barrier`] for the last one).
pub fn fsync_dir(dir: &Path) -> Result<()> {
    sync_file(&open_dir(dir)?).with_context(|| format!("fsync of directory {}", dir.display()))
}

/// [`fsync_dir`], then the [`barrier`]: the last step before a write is
/// acknowledged.
pub fn fsync_dir_barrier(dir: &Path) -> Result<()> {
    let f = open_dir(dir)?;
    sync_file(&f).with_context(|| format!("fsync of directory {}", dir.display()))?;
    barrier(&f).with_context(|| format!("full flush (F_FULLFSYNC) of {}", dir.display()))
}

/// The entries of `dir` as paths, sorted; a missing directory is empty.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in rd {
        out.push(e.with_context(|| format!("reading {}", dir.display()))?.path());
    }
    out.sort();
    Ok(out)
}

/// Open `path` for reading without following a symlink; `None` if missing.
pub fn open_read(path: &Path) -> Result<Option<File>> {
    match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            bail!("{} is a symlink; muxvisor refuses to follow it. Remove it", path.display())
        }
        Err(e) => Err(e).with_context(|| format!("opening {}", path.display())),
    }
}

/// The whole content of `path`, or `None` if it does not exist.
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    let Some(mut f) = open_read(path)? else { return Ok(None) };
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(buf))
}

/// Create `path` exclusively (0600, never through a symlink) and write
/// `bytes` into it (not synced); the open file is returned.
pub fn create_private(path: &Path, bytes: &[u8]) -> Result<File> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(f)
}

/// Replace `path` with `bytes` atomically and durably: write a sibling temp
/// file (0600, exclusive), fsync it, rename it over `path`, fsync the dir,
/// then the [`barrier`] (one full flush on macOS).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("atomic_write needs a path with a parent")?;
    let tmp = tmp_sibling(path);
    let result = (|| -> Result<()> {
        let f = create_private(&tmp, bytes)?;
        sync_file(&f).with_context(|| format!("fsync of {}", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        fsync_dir_barrier(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn tmp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nonce = format!("{}.{}", std::process::id(), unique_suffix());
    path.with_file_name(format!(".{name}.tmp.{nonce}"))
}

/// A process-unique counter mixed with the clock, for temp-file names.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{t:x}{n:x}")
}

/// Open `path` for appending (created 0600), never through a symlink.
pub fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {} for append", path.display()))
}

/// Remove `path` if it exists; a missing file is fine.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Set a file's mode to 0600 (for files made by others, like tmux's socket).
pub fn chmod_600(path: &Path) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", path.display()))
}

/// An exclusive flock held until drop. Lock files are never deleted, and a
/// lock is never broken: the kernel releases it when its holder dies.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl LockGuard {
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Open `path` read-write, created 0600 if missing, never truncated and
/// never through a symlink (lock files, in-place counters).
pub fn open_private_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn open_lock_file(path: &Path) -> Result<File> {
    open_private_rw(path).context("opening a lock file")
}

/// Take the lock without waiting; `Ok(None)` if someone else holds it.
pub fn try_lock(path: &Path) -> Result<Option<LockGuard>> {
    let file = open_lock_file(path)?;
    Ok(try_flock(&file, path)?.then_some(LockGuard { file }))
}

/// One non-blocking try for `file`'s exclusive flock (of lock file `path`):
/// true if it is ours now, false if someone else holds it.
fn try_flock(file: &File, path: &Path) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Take the lock, waiting at most `wait`; past that, exit 75 (try again).
pub fn lock_within(path: &Path, wait: Duration, what: &str) -> Result<LockGuard> {
    let file = open_lock_file(path)?;
    let deadline = Instant::now() + wait;
    let ours = try_flock(&file, path)?
        || flock_until(&file, deadline)
            .with_context(|| format!("waiting for the lock {}", path.display()))?;
    if ours {
        return Ok(LockGuard { file });
    }
    Err(fail(
        Exit::TempFail,
        format!(
            "{what}: lock {} is still held after {}; another muxvisor is working on it, try again",
            path.display(),
            crate::ground::duration::format(wait)
        ),
    ))
}

/// Wait in `flock(LOCK_EX)` on `file` until it is ours (`Ok(true)`) or
/// `deadline` has passed (`Ok(false)`): the kernel wakes us the moment the
/// holder lets go, where a poll would sleep past it. The deadline is kept by
/// a watchdog thread that, once it passes, interrupts the wait with SIGALRM
/// (its handler does nothing and is installed without `SA_RESTART`, so the
/// call returns `EINTR`), again every 10 ms until the wait has ended, in
/// case a signal came before the call was in the kernel.
fn flock_until(file: &File, deadline: Instant) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    use std::sync::{Arc, Condvar, Mutex, Once};
    extern "C" fn interrupt(_: libc::c_int) {}
    static HANDLER: Once = Once::new();
    HANDLER.call_once(|| {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let action =
            SigAction::new(SigHandler::Handler(interrupt), SaFlags::empty(), SigSet::empty());
        // SAFETY: the handler does nothing, so it is async-signal-safe.
        let _ = unsafe { sigaction(Signal::SIGALRM, &action) };
    });
    // SAFETY: the id of the calling thread, which outlives the watchdog
    // (it joins it before returning).
    let me = unsafe { libc::pthread_self() };
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let watch = Arc::clone(&state);
    let watchdog = thread::spawn(move || {
        let (ended, cv) = &*watch;
        let mut over = ended.lock().unwrap_or_else(|e| e.into_inner());
        while !*over {
            let now = Instant::now();
            let pause = if now >= deadline {
                // SAFETY: `me` is alive: it joins this thread before it returns.
                unsafe { libc::pthread_kill(me, libc::SIGALRM) };
                Duration::from_millis(10)
            } else {
                deadline - now
            };
            over = cv.wait_timeout(over, pause).unwrap_or_else(|e| e.into_inner()).0;
        }
    });
    let result = loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            break Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            break Err(e);
        }
        if Instant::now() >= deadline {
            break Ok(false);
        }
    };
    let (ended, cv) = &*state;
    *ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
    cv.notify_all();
    let _ = watchdog.join();
    result
}

/// True when someone holds `path`'s flock right now. Probes with a shared
/// lock so that it never blocks an exclusive holder for long.
pub fn is_locked(path: &Path) -> Result<bool> {
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("opening lock file {}", path.display())),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(fs::TryLockError::WouldBlock) => Ok(true),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("probing {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("mvfs").tempdir_in("/tmp").unwrap()
    }

    #[test]
    fn root_is_created_private() {
        let t = tmp();
        let r = open_root(&t.path().join("root")).unwrap();
        let md = fs::metadata(r.dir()).unwrap();
        assert_eq!(md.mode() & 0o777, 0o700);
        for d in r.all_dirs() {
            assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700, "{}", d.display());
        }
    }

    #[test]
    fn root_refuses_symlink_and_open_modes() {
        let t = tmp();
        let real = t.path().join("real");
        fs::DirBuilder::new().mode(0o700).create(&real).unwrap();
        let link = t.path().join("link");
        symlink(&real, &link).unwrap();
        let e = format!("{:#}", open_root(&link).unwrap_err());
        assert!(e.contains("symlink"), "{e}");
        // Issue 10, item 3: every spelling of the link is the link.
        for spelling in ["link/", "link/.", "link//", "./link/./"] {
            let given = PathBuf::from(format!("{}/{spelling}", t.path().display()));
            let e = format!("{:#}", open_root(&given).unwrap_err());
            assert!(e.contains("symlink"), "{spelling}: {e}");
            let e = format!("{:#}", check_private_dir(&given, "root").unwrap_err());
            assert!(e.contains("symlink"), "{spelling}: {e}");
        }
        assert!(check_private_dir(&real, "root").is_ok());
        assert!(check_private_dir(&real.join("."), "root").is_ok());

        fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
        let e = format!("{:#}", open_root(&real).unwrap_err());
        assert!(e.contains("0755") && e.contains("chmod 700"), "{e}");
    }

    #[test]
    fn root_refuses_foreign_owner() {
        let t = tmp();
        let d = t.path().join("foreign");
        fs::DirBuilder::new().mode(0o700).create(&d).unwrap();
        // Root can chown; an unprivileged run cannot make this case and skips.
        if nix::unistd::chown(&d, Some(nix::unistd::Uid::from_raw(4242)), None).is_err() {
            crate::ground::testing::skip(
                "fsutil::tests::root_refuses_foreign_owner",
                "cannot chown as this user",
            );
            return;
        }
        let e = format!("{:#}", open_root(&d).unwrap_err());
        assert!(e.contains("owned by uid 4242"), "{e}");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_tmp() {
        let t = tmp();
        let p = t.path().join("f.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn syncs_and_barriers_work_on_files_and_directories() {
        let t = tmp();
        let p = t.path().join("f");
        let mut f = OpenOptions::new().create_new(true).write(true).open(&p).unwrap();
        f.write_all(b"x").unwrap();
        sync_file(&f).unwrap();
        sync_file_data(&f).unwrap();
        barrier(&f).unwrap();
        fsync_dir(t.path()).unwrap();
        fsync_dir_barrier(t.path()).unwrap();
        let e = format!("{:#}", fsync_dir(&t.path().join("missing")).unwrap_err());
        assert!(e.contains("missing") && e.contains("to fsync it"), "{e}");
    }

    #[test]
    fn appends_and_reads_refuse_symlinks() {
        let t = tmp();
        let target = t.path().join("target");
        fs::write(&target, b"secret").unwrap();
        let link = t.path().join("log");
        symlink(&target, &link).unwrap();
        assert!(open_append(&link).is_err());
        assert!(read_if_exists(&link).is_err());
        assert_eq!(read_if_exists(&t.path().join("missing")).unwrap(), None);
    }

    /// A waiter blocks in the kernel until the holder lets go, and gets
    /// the lock then; the wait past its deadline is covered below.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_waiter_blocked_in_the_kernel_gets_the_lock_when_it_is_let_go() {
        let t = tmp();
        let p = t.path().join("q.lock");
        let held = try_lock(&p).unwrap().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let p = p.clone();
            thread::spawn(move || {
                tx.send(nix::unistd::gettid().as_raw()).unwrap();
                lock_within(&p, Duration::from_secs(60), "queue of w").map(|_| ())
            })
        };
        let tid = rx.recv().unwrap();
        // Let go once the waiter sleeps (state S: in flock, the only place
        // it can block), polled with a deadline.
        let stat = format!("/proc/self/task/{tid}/stat");
        let until = Instant::now() + Duration::from_secs(30);
        while !fs::read_to_string(&stat).unwrap().rsplit(") ").next().unwrap().starts_with('S') {
            assert!(Instant::now() < until, "the waiter never blocked");
            thread::yield_now();
        }
        assert!(!waiter.is_finished());
        drop(held);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn locks_exclude_and_release() {
        let t = tmp();
        let p = t.path().join("l.lock");
        let g = try_lock(&p).unwrap().expect("first lock");
        assert!(try_lock(&p).unwrap().is_none());
        assert!(is_locked(&p).unwrap());
        let e = lock_within(&p, Duration::from_millis(20), "test").unwrap_err();
        assert_eq!(crate::ground::exit::code_for(&e), Exit::TempFail);
        drop(g);
        assert!(!is_locked(&p).unwrap());
        assert!(try_lock(&p).unwrap().is_some());
    }
}
