//! The sandbox of a module's configure, build and install commands: no
//! network, and a read-only filesystem except the instance's own dirs.
//!
//! A download hidden in a build step is an input no key holds: the same
//! key could then build different artifacts on two machines, or fail on one.
//! Only fetch reaches the network; a command runs in a new network
//! namespace (loopback only, brought up) and a new mount namespace where
//! every mount is read-only except bind mounts of its build dir, destdir,
//! `HOME` and `TMPDIR` (and of the source dir when it is the build dir).
//!
//! The decisions a reader would question:
//! - No helper process, no external runtime: the child strata forks for the
//!   command enters the namespaces itself in a `pre_exec` hook, before it
//!   execs bash. It keeps its pid, its process group (Ctrl-C still reaches the
//!   whole tree) and its inherited jobserver descriptors (pipes, and a fifo
//!   opens on a read-only mount). The hook runs between fork and exec of a
//!   multi-threaded process, so it makes raw syscalls only: every path and
//!   buffer is prepared before the fork.
//! - Not root: a user namespace mapping the user to itself (no root inside,
//!   so files stay the user's and the command loses its capabilities at
//!   exec). Root: the mount and network namespaces alone, and a user
//!   namespace only if those are refused.
//! - Read-only is one `mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)` on `/`
//!   (Linux 5.12+), which works the same for root and in a user namespace
//!   (per-mount remounts would have to repeat each mount's locked flags).
//! - A variant's shared source (`$STRATA_SOURCE_DIR` when it is not the
//!   build dir) is read-only: variants build from it at once, and its
//!   stamps say it is the unpacked and patched archive.
//! - `/tmp` stays read-only (the project may live under it, so nothing is
//!   mounted over it); commands get a private `TMPDIR`. `/dev/shm` gets a
//!   private tmpfs.
//! - Not a key input: like `-j`, it changes whether a build may cheat, not
//!   what an honest build makes.
//! - A fixed-output module (`network = true`, every output pinned) keeps the
//!   machine's network namespace: the pins, checked after its install, are
//!   what make its download safe (Nix's fixed-output derivations). Its
//!   filesystem is read-only as for every other command.

use crate::manifest::SandboxMode;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable overriding `[settings] sandbox`.
pub const ENV_SANDBOX: &str = "STRATA_SANDBOX";

/// Where the docs say how to declare a download instead.
pub const DOCS: &str = "docs/manifest.md#the-sandbox";

/// The configured mode with `STRATA_SANDBOX` applied on top.
pub fn mode(configured: SandboxMode) -> Result<SandboxMode, String> {
    mode_with(configured, std::env::var(ENV_SANDBOX).ok())
}

fn mode_with(configured: SandboxMode, env: Option<String>) -> Result<SandboxMode, String> {
    match env.as_deref() {
        None | Some("") => Ok(configured),
        Some("auto") => Ok(SandboxMode::Auto),
        Some("require") => Ok(SandboxMode::Require),
        Some("off") => Ok(SandboxMode::Off),
        Some(v) => Err(format!(
            "{ENV_SANDBOX}={v:?} is not a sandbox mode\n  hint: use auto, require or off, or unset it"
        )),
    }
}

static UNAVAILABLE: OnceLock<String> = OnceLock::new();
static WARNED: AtomicBool = AtomicBool::new(false);

/// Why the sandbox could not be made earlier in this run, if it could not
/// (`auto` then stops trying).
pub fn unavailable() -> Option<&'static str> {
    UNAVAILABLE.get().map(String::as_str)
}

/// Records that the sandbox cannot be made; true the first time in the
/// run, when the caller warns.
pub fn mark_unavailable(why: &str) -> bool {
    let _ = UNAVAILABLE.set(why.to_string());
    !WARNED.swap(true, Ordering::SeqCst)
}

/// The warning `auto` gives, once per run, when it runs commands unsandboxed.
pub fn unavailable_warning(why: &str) -> String {
    format!(
        "commands run without the sandbox (network and read-only filesystem not enforced): {why}\n  \
         hint: allow user namespaces (e.g. sysctl kernel.unprivileged_userns_clone=1 or \
         kernel.apparmor_restrict_unprivileged_userns=0), or set [settings] sandbox = \"off\" \
         ({ENV_SANDBOX}=off) to run unsandboxed without this warning"
    )
}

/// The hint added to a sandboxed step's failure, chosen by what its log says
/// (`network`: a fixed-output module's step, which had the network).
pub fn failure_hint(tail: &str, network: bool) -> String {
    if network {
        return format!(
            "a fixed-output module's commands run with the network, but can write only the \
             build dir, $STRATA_DESTDIR, $HOME and $TMPDIR (sandbox; see {DOCS})"
        );
    }
    const NET: [&str; 8] = [
        "Could not resolve host",
        "Temporary failure in name resolution",
        "Name or service not known",
        "Network is unreachable",
        "Connection refused",
        "unable to resolve host",
        "getaddrinfo",
        "Failed to connect",
    ];
    if NET.iter().any(|s| tail.contains(s)) {
        format!(
            "commands run without the network (sandbox): declare downloads in the module file \
             (its source `url` and `sha256`, a dependency module that provides the file, or \
             extra downloads; see {DOCS})"
        )
    } else if tail.contains("Read-only file system") {
        format!(
            "commands run in a sandbox where only the build dir, $STRATA_DESTDIR, $HOME and \
             $TMPDIR are writable (see {DOCS})"
        )
    } else {
        format!(
            "commands run without the network and can write only the build dir, \
             $STRATA_DESTDIR, $HOME and $TMPDIR (sandbox); declare downloads in the module \
             file (see {DOCS})"
        )
    }
}

/// Everything one sandboxed command needs, prepared before the fork.
pub struct Sandbox {
    writable: Vec<CString>,
    cwd: CString,
    /// `uid_map` and `gid_map` lines mapping the user to itself.
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    root: bool,
    /// Keep the network (a fixed-output module): no network namespace.
    network: bool,
}

/// What the child was doing when the sandbox failed (one byte on the report pipe).
#[derive(Clone, Copy)]
#[repr(u8)]
enum Stage {
    UserNs = 1,
    Setgroups,
    UidMap,
    GidMap,
    Private,
    ReadOnly,
    Bind,
    Writable,
    Chdir,
    Loopback,
}

impl Stage {
    fn describe(b: u8) -> &'static str {
        match b {
            1 => "unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET)",
            2 => "writing /proc/self/setgroups",
            3 => "writing /proc/self/uid_map",
            4 => "writing /proc/self/gid_map",
            5 => "making mounts private",
            6 => "mount_setattr(/, AT_RECURSIVE, MOUNT_ATTR_RDONLY) (Linux 5.12+)",
            7 => "bind-mounting a writable dir",
            8 => "making a writable dir writable",
            9 => "chdir into the build dir",
            10 => "bringing up the loopback interface",
            _ => "setting up",
        }
    }
}

struct Failure(Stage, i32);

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

fn check(stage: Stage, r: libc::c_long) -> Result<(), Failure> {
    if r < 0 {
        Err(Failure(stage, errno()))
    } else {
        Ok(())
    }
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

impl Sandbox {
    /// A sandbox where `writable` (existing dirs) stay writable and the
    /// command starts in `cwd`; `network`: the command keeps the machine's
    /// network (only for a fixed-output module).
    pub fn new(writable: &[&Path], cwd: &Path, network: bool) -> io::Result<Sandbox> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for d in writable {
            let d = d.canonicalize()?;
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        // SAFETY: getuid/getgid/geteuid cannot fail.
        let (uid, gid, euid) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid()) };
        let map = |id: u32| format!("{id} {id} 1\n").into_bytes();
        Ok(Sandbox {
            writable: dirs.iter().map(|d| cstring(d)).collect::<io::Result<_>>()?,
            cwd: cstring(cwd)?,
            uid_map: map(uid),
            gid_map: map(gid),
            root: euid == 0,
            network,
        })
    }

    /// Whether the command keeps the network (a fixed-output module).
    pub fn network(&self) -> bool {
        self.network
    }

    /// Makes `cmd`'s child enter the sandbox before it execs. Returns the
    /// read end of the pipe on which a failing child names its stage (see
    /// [`failure`]).
    pub fn install(self, cmd: &mut Command) -> io::Result<OwnedFd> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`, which we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: `enter` makes raw syscalls only, on memory prepared before
        // the fork; writing one byte to a pipe is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                self.enter().map_err(|Failure(stage, e)| {
                    let b = stage as u8;
                    libc::write(write.as_raw_fd(), (&b as *const u8).cast(), 1);
                    io::Error::from_raw_os_error(e)
                })
            });
        }
        Ok(read)
    }

    /// In the child, between fork and exec: async-signal-safe only.
    fn enter(&self) -> Result<(), Failure> {
        let net_ns = if self.network {
            libc::CLONE_NEWNS
        } else {
            libc::CLONE_NEWNS | libc::CLONE_NEWNET
        };
        // SAFETY (whole function): raw syscalls on NUL-terminated strings and
        // buffers owned by `self`, which outlives the call.
        unsafe {
            let mut user_ns = !self.root;
            if self.root && libc::unshare(net_ns) < 0 {
                // Root without CAP_SYS_ADMIN (a container): try as a user.
                user_ns = true;
            }
            if user_ns {
                check(
                    Stage::UserNs,
                    libc::unshare(libc::CLONE_NEWUSER | net_ns).into(),
                )?;
                write_file(c"/proc/self/setgroups", b"deny", Stage::Setgroups, true)?;
                write_file(c"/proc/self/uid_map", &self.uid_map, Stage::UidMap, false)?;
                write_file(c"/proc/self/gid_map", &self.gid_map, Stage::GidMap, false)?;
            }
            let none = std::ptr::null::<libc::c_char>();
            check(
                Stage::Private,
                libc::mount(
                    none,
                    c"/".as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                )
                .into(),
            )?;
            let mut ro: libc::mount_attr = std::mem::zeroed();
            ro.attr_set = libc::MOUNT_ATTR_RDONLY;
            check(
                Stage::ReadOnly,
                libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    c"/".as_ptr(),
                    libc::AT_RECURSIVE as libc::c_uint,
                    &ro as *const libc::mount_attr,
                    std::mem::size_of::<libc::mount_attr>(),
                ),
            )?;
            // Best effort: a private, writable /dev/shm (POSIX semaphores).
            libc::mount(
                c"tmpfs".as_ptr(),
                c"/dev/shm".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=1777".as_ptr().cast(),
            );
            let mut rw: libc::mount_attr = std::mem::zeroed();
            rw.attr_clr = libc::MOUNT_ATTR_RDONLY;
            for d in &self.writable {
                check(
                    Stage::Bind,
                    libc::mount(
                        d.as_ptr(),
                        d.as_ptr(),
                        none,
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    )
                    .into(),
                )?;
                check(
                    Stage::Writable,
                    libc::syscall(
                        libc::SYS_mount_setattr,
                        libc::AT_FDCWD,
                        d.as_ptr(),
                        0 as libc::c_uint,
                        &rw as *const libc::mount_attr,
                        std::mem::size_of::<libc::mount_attr>(),
                    ),
                )?;
            }
            // The working directory still names the read-only mount the
            // bind now covers: enter the writable one.
            check(Stage::Chdir, libc::chdir(self.cwd.as_ptr()).into())?;
            if !self.network {
                loopback_up()?;
            }
        }
        Ok(())
    }
}

/// Writes `data` to a /proc file; `optional`: a missing file is fine (old
/// kernels have no `setgroups`).
unsafe fn write_file(
    path: &std::ffi::CStr,
    data: &[u8],
    stage: Stage,
    optional: bool,
) -> Result<(), Failure> {
    // SAFETY: `path` is NUL-terminated, `data` is valid for its length.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            let e = errno();
            return if optional && e == libc::ENOENT {
                Ok(())
            } else {
                Err(Failure(stage, e))
            };
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let e = errno();
        libc::close(fd);
        if n != data.len() as isize {
            return Err(Failure(stage, if n < 0 { e } else { libc::EIO }));
        }
    }
    Ok(())
}

/// `ip link set lo up`, by ioctl.
unsafe fn loopback_up() -> Result<(), Failure> {
    // SAFETY: an ifreq on the stack, a socket closed before returning.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        check(Stage::Loopback, s.into())?;
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut r = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req);
        if r >= 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            r = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
        }
        let e = errno();
        libc::close(s);
        if r < 0 {
            return Err(Failure(Stage::Loopback, e));
        }
    }
    Ok(())
}

/// After a failed spawn: why the sandbox could not be made, when that is
/// what failed (the child wrote its stage to `report`).
pub fn failure(report: &OwnedFd, err: &io::Error) -> Option<String> {
    let mut b = 0u8;
    // SAFETY: reads at most one byte into `b` from a non-blocking pipe.
    let n = unsafe { libc::read(report.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
    (n == 1).then(|| format!("{} failed: {err}", Stage::describe(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_the_setting() {
        let m = |c, e: Option<&str>| mode_with(c, e.map(String::from));
        assert_eq!(m(SandboxMode::Auto, None), Ok(SandboxMode::Auto));
        assert_eq!(m(SandboxMode::Require, Some("")), Ok(SandboxMode::Require));
        assert_eq!(m(SandboxMode::Require, Some("off")), Ok(SandboxMode::Off));
        assert_eq!(
            m(SandboxMode::Off, Some("require")),
            Ok(SandboxMode::Require)
        );
        let e = m(SandboxMode::Auto, Some("yes")).unwrap_err();
        assert!(
            e.contains("STRATA_SANDBOX") && e.contains("auto, require or off"),
            "{e}"
        );
    }

    #[test]
    fn the_hint_follows_the_log() {
        assert!(
            failure_hint("curl: (6) Could not resolve host: x", false)
                .contains("without the network")
        );
        assert!(
            failure_hint("touch: cannot touch '/x': Read-only file system", false)
                .contains("writable")
        );
        assert!(failure_hint("make: *** Error 2", false).contains("declare downloads"));
        assert!(failure_hint("curl: (7) Failed to connect", true).contains("with the network"));
    }
}
