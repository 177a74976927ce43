//! The few syscalls nix does not wrap the way init needs them, each behind
//! a safe function. Everything else goes through nix.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// Marks every fd from `first` up close-on-exec, so nothing the shim or a
/// library left open reaches the user's command (the leaked-fd class of
/// runc CVE-2024-21626).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range(2) only changes fd flags in this process; with
    // CLOSE_RANGE_CLOEXEC no fd is closed, so no Rust owner is invalidated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets IFF_UP on `lo`: a new network namespace starts with it down.
pub fn loopback_up() -> io::Result<()> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags of `req`,
    // which lives for the whole call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled ifru_flags just above.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`, valid for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the terminal on `fd` the controlling terminal of this session.
pub fn set_controlling_tty(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument and touches no memory of ours.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the window size of the terminal on `fd`.
pub fn set_winsize(fd: BorrowedFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives for the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setrlimit(2) by resource number, as the OCI spec names them.
pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads `lim`, valid for the call.
    if unsafe { libc::setrlimit(resource as _, &lim) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A fork-style clone(2): no CLONE_VM and no new stack, so the child runs
/// on a copy of this process like after fork(2), but `flags` may add new
/// namespaces (CLONE_NEW*) or CLONE_PARENT, which fork cannot. SIGCHLD is
/// the child's exit signal. Returns the child's pid, or 0 in the child.
///
/// # Safety
/// The calling process must be single-threaded (no lock can be held by a
/// thread that does not exist in the child), and the child may only make
/// async-signal-safe calls before it execs or exits.
pub unsafe fn clone_fork(flags: libc::c_int) -> io::Result<i32> {
    // SAFETY: SYS_clone with a null stack and no CLONE_VM/CLONE_SETTLS
    // duplicates the process as fork does; the caller upholds the rest.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as i32)
    }
}

/// Whether `cap` is in this process's bounding set (PR_CAPBSET_READ).
pub fn in_bounding(cap: u8) -> bool {
    // SAFETY: PR_CAPBSET_READ takes a capability number and touches no memory.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) == 1 }
}

/// Removes `cap` from this process's bounding set (PR_CAPBSET_DROP).
pub fn drop_bounding(cap: u8) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes a capability number and touches no memory.
    if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raises `cap` in the ambient set (it must be permitted and inheritable).
pub fn raise_ambient(cap: u8) -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT_RAISE takes numbers and touches no memory.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0,
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn mask(caps: &[u8]) -> u64 {
    caps.iter().filter(|c| **c < 64).fold(0, |m, c| m | 1 << c)
}

/// Sets this thread's effective, permitted and inheritable sets (capset(2)
/// with the 64-bit version 3 layout).
pub fn capset(effective: &[u8], permitted: &[u8], inheritable: &[u8]) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let (e, p, i) = (mask(effective), mask(permitted), mask(inheritable));
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: e as u32,
            permitted: p as u32,
            inheritable: i as u32,
        },
        Data {
            effective: (e >> 32) as u32,
            permitted: (p >> 32) as u32,
            inheritable: (i >> 32) as u32,
        },
    ];
    // SAFETY: capset reads a version-3 header and two data structs, both
    // laid out as the kernel defines them and alive for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Installs a seccomp filter on this thread (seccomp(2),
/// SECCOMP_SET_MODE_FILTER). `program` is `struct sock_filter`s in native
/// byte order; `flags` are SECCOMP_FILTER_FLAG_* bits. The caller must have
/// no_new_privs set or hold CAP_SYS_ADMIN (EACCES otherwise).
pub fn set_seccomp_filter(program: &[u8], flags: u32) -> io::Result<()> {
    const INSN: usize = 8;
    let count = program.len() / INSN;
    if count == 0 || count * INSN != program.len() || count > u16::MAX as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // Copied into real sock_filter structs: the bytes need not be aligned.
    let filters: Vec<libc::sock_filter> = program
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: filters.len() as libc::c_ushort,
        filter: filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: seccomp(2) reads `prog` and the `filters` array it points to,
    // both alive for the call; the kernel copies the program and keeps no
    // pointer into our memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setdomainname(2) (nix has only sethostname).
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which the
    // kernel only reads.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Copies every extended attribute of `from` to `to` (both open fds).
/// Names a filesystem or this process may not set (`ENOTSUP`, `EPERM`,
/// e.g. `security.selinux` without SELinux) are skipped: the copy is the
/// best the target allows, as with `cp -a`.
pub fn copy_xattrs(from: RawFd, to: RawFd) -> io::Result<()> {
    let list = xattr_call(|buf, len| {
        // SAFETY: `buf` is valid for `len` bytes (or null with len 0, which
        // asks for the size); the kernel writes at most `len` bytes.
        unsafe { libc::flistxattr(from, buf.cast(), len) }
    })?;
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        let value = match xattr_call(|buf, len| {
            // SAFETY: as above; `cname` is a NUL-terminated name.
            unsafe { libc::fgetxattr(from, cname.as_ptr(), buf.cast(), len) }
        }) {
            Ok(v) => v,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::ENOTSUP)) => continue,
            Err(e) => return Err(e),
        };
        // SAFETY: `value` is valid for its length; the kernel only reads it.
        let r =
            unsafe { libc::fsetxattr(to, cname.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::EPERM)) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Runs a size-then-fill xattr call: first with no buffer for the size,
/// then with a buffer of that size (again if it grew meanwhile).
fn xattr_call(mut call: impl FnMut(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let size = call(std::ptr::null_mut(), 0);
        if size < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::ENOTSUP) {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
        let mut buf = vec![0u8; size as usize];
        let got = call(buf.as_mut_ptr(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
    }
}
