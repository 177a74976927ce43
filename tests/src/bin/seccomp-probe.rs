//! `seccomp-probe CALL...`: makes each named syscall with arguments that
//! are harmless whatever happens (bad pointers, unknown key types, invalid
//! flags) and prints `CALL=0` if it returned normally or `CALL=-ERRNO`.
//! The seccomp tests copy it into a container to see which raw syscalls the
//! filter lets through, where busybox has no applet that makes them.
//!
//! Calls: keyctl, add_key, request_key, kexec_load, open_by_handle_at, bpf,
//! unshare-user, clone3, socket-vsock, personality-query,
//! personality-exec, mkdir.

/// The syscall for `name`, made; its raw return value or `None` if unknown.
fn call(name: &str) -> Option<libc::c_long> {
    // Every argument as a full register: the kernel reads longs, and an
    // `int` passed through varargs may leave the upper half undefined.
    let l = |v: i64| v as libc::c_long;
    let s = |c: &'static std::ffi::CStr| c.as_ptr() as libc::c_long;
    let null = 0 as libc::c_long;
    // SAFETY: (for every arm) each call passes only integers, null
    // pointers or pointers to static NUL-terminated strings; the kernel
    // reads nothing else of ours and the process keeps no state from them
    // that matters (it exits right after).
    let r = unsafe {
        match name {
            // KEYCTL_GET_KEYRING_ID (0) of the session keyring (-3).
            "keyctl" => libc::syscall(libc::SYS_keyctl, l(0), l(-3), l(0)),
            // A key type that does not exist: ENODEV once past seccomp.
            "add_key" => libc::syscall(
                libc::SYS_add_key,
                s(c"hind_no_such_type"),
                s(c"x"),
                null,
                l(0),
                l(-3),
            ),
            "request_key" => libc::syscall(
                libc::SYS_request_key,
                s(c"hind_no_such_type"),
                s(c"x"),
                null,
                l(0),
            ),
            // No segments and every flag set: EINVAL (or EPERM without
            // CAP_SYS_BOOT) from the kernel; never loads or unloads.
            "kexec_load" => libc::syscall(libc::SYS_kexec_load, l(0), l(0), null, l(0xffff_ffff)),
            // A bad fd and no handle: EBADF/EFAULT once past seccomp.
            "open_by_handle_at" => libc::syscall(libc::SYS_open_by_handle_at, l(-1), null, l(0)),
            // An unknown command: EINVAL (EPERM without CAP_BPF).
            "bpf" => libc::syscall(libc::SYS_bpf, l(0xffff), null, l(0)),
            "unshare-user" => libc::syscall(libc::SYS_unshare, l(libc::CLONE_NEWUSER as i64)),
            // A zero size: EINVAL once past seccomp.
            "clone3" => libc::syscall(libc::SYS_clone3, null, l(0)),
            "socket-vsock" => libc::syscall(
                libc::SYS_socket,
                l(libc::AF_VSOCK as i64),
                l(libc::SOCK_STREAM as i64),
                l(0),
            ),
            "personality-query" => libc::syscall(libc::SYS_personality, l(0xffff_ffff)),
            // READ_IMPLIES_EXEC: a personality the default profile refuses.
            "personality-exec" => libc::syscall(libc::SYS_personality, l(0x0040_0000)),
            "mkdir" => libc::syscall(
                libc::SYS_mkdirat,
                l(libc::AT_FDCWD as i64),
                s(c"/tmp/probe-dir"),
                l(0o700),
            ),
            _ => return None,
        }
    };
    Some(if r < 0 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as libc::c_long)
    } else {
        0
    })
}

fn main() {
    let mut out = Vec::new();
    for name in std::env::args().skip(1) {
        match call(&name) {
            Some(r) => out.push(format!("{name}={r}")),
            None => {
                eprintln!("seccomp-probe: unknown call {name:?}");
                std::process::exit(2);
            }
        }
    }
    println!("{}", out.join(" "));
}
