//! The few syscalls nix does not wrap the way init needs them, each behind
//! a safe function. Everything else goes through nix.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

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
