//! The device cgroup on cgroup v2: the container's `linux.resources.devices`
//! rules compiled into a `BPF_PROG_TYPE_CGROUP_DEVICE` program and attached
//! to its cgroup. v2 has no `devices.allow`/`devices.deny` files; the
//! kernel runs this program on every mknod and open of a device node by a
//! process of the cgroup (or below) and denies the access when it returns 0.
//!
//! The program belongs to the cgroup: the shim closes its own fd right
//! after attaching, so removing the cgroup frees the program too.
//!
//! Written here instead of enabling libcgroups' `cgroupsv2_devices`
//! feature: that pulls in `libbpf-sys`, which compiles the C libbpf (and
//! wants libelf and zlib) for what is two bpf(2) calls and a straight-line
//! program of a few instructions per rule. Emitting it ourselves keeps C out
//! of the build, and the emitter is checked without a kernel by the small
//! interpreter in the tests below.
//!
//! Semantics are those of the v1 `devices` controller, so a bundle means the
//! same on both: rules are read last to first and the first that matches
//! decides; an allow rule matches when it grants every requested access, a
//! deny rule when it forbids any of them; with no match the access is
//! allowed (the v1 default until a rule denies `a`).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("device rule {0:?}: {1}")]
    Rule(String, &'static str),
    #[error("load the device program into the kernel{0}")]
    Load(String, #[source] io::Error),
    #[error("open cgroup {0}")]
    Open(PathBuf, #[source] io::Error),
    #[error("attach the device program to cgroup {0}")]
    Attach(PathBuf, #[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

// From <linux/bpf.h>; the values are kernel ABI.
const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_ATTACH: u32 = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of descendant cgroups run too (all must allow), so a container
/// that runs containers can restrict its own children further.
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// `struct bpf_cgroup_dev_ctx.access_type`: `(ACC << 16) | DEV`.
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcodes used (class | op | source), see the kernel's
// Documentation/bpf/standardization/instruction-set.rst.
const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV32_X: u8 = 0xbc; // dst = (u32)src
const AND32_K: u8 = 0x54; // dst = (u32)(dst & imm)
const RSH32_K: u8 = 0x74; // dst = (u32)(dst >> imm)
const MOV64_K: u8 = 0xb7; // dst = imm
const JEQ_K: u8 = 0x15; // if dst == imm goto +off
const JNE_K: u8 = 0x55; // if dst != imm goto +off
const EXIT: u8 = 0x95; // return r0

// Registers: r1 holds the context on entry; the rest are ours.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// A rule in the program's terms; `None` is a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    allow: bool,
    dev: Option<u32>,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

impl Rule {
    /// `None` for a rule that cannot concern a device (type `p`).
    fn from_oci(r: &LinuxDeviceCgroup) -> Result<Option<Rule>> {
        let bad = |why| Error::Rule(r.to_string(), why);
        let dev = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
            LinuxDeviceType::P => return Ok(None),
        };
        // Compared as 32-bit immediates, so they must fit in an i32 (real
        // numbers have 12 and 20 bits); negative means "any", as in runc.
        let number = |n: Option<i64>| -> Result<Option<u32>> {
            match n {
                None => Ok(None),
                Some(n) if n < 0 => Ok(None),
                Some(n) => i32::try_from(n)
                    .map(|n| Some(n as u32))
                    .map_err(|_| bad("device number out of range")),
            }
        };
        let mut access = 0;
        for c in r.access().as_deref().unwrap_or("").chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => return Err(bad("access must be a combination of r, w and m")),
            };
        }
        if access == 0 {
            return Err(bad("no access given"));
        }
        Ok(Some(Rule {
            allow: r.allow(),
            dev,
            major: number(r.major())?,
            minor: number(r.minor())?,
            access,
        }))
    }

    /// The instructions that return this rule's verdict when it matches
    /// and fall through to the next block otherwise; `true` when it matches
    /// everything (nothing after it can run).
    fn emit(&self, out: &mut Vec<Insn>) -> bool {
        let mut block = Vec::new();
        if let Some(d) = self.dev {
            block.push(insn(JNE_K, TYPE, 0, 0, d as i32));
        }
        if let Some(n) = self.major {
            block.push(insn(JNE_K, MAJOR, 0, 0, n as i32));
        }
        if let Some(n) = self.minor {
            block.push(insn(JNE_K, MINOR, 0, 0, n as i32));
        }
        if self.access != ACC_ALL {
            block.push(insn(MOV32_X, R0, ACCESS, 0, 0));
            if self.allow {
                // Matches when nothing outside the rule's access is asked.
                block.push(insn(AND32_K, R0, 0, 0, (!self.access & ACC_ALL) as i32));
                block.push(insn(JNE_K, R0, 0, 0, 0));
            } else {
                // Matches when any of the rule's access is asked.
                block.push(insn(AND32_K, R0, 0, 0, self.access as i32));
                block.push(insn(JEQ_K, R0, 0, 0, 0));
            }
        }
        let catch_all = block.is_empty();
        block.push(insn(MOV64_K, R0, 0, 0, self.allow as i32));
        block.push(insn(EXIT, 0, 0, 0, 0));
        // Every test skips the rest of the block.
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K || ins.code == JEQ_K {
                ins.off = (len - i - 1) as i16;
            }
        }
        out.extend(block);
        catch_all
    }
}

/// The rules libcgroups' v1 `devices` controller writes after a bundle's
/// own (its `default_devices` and `default_allow_devices`, the list runc
/// also appends as `AllowedDevices`): the basic devices, mknod of any node,
/// ptys and tun. Appended here too so a bundle gets the same device cgroup
/// on v1 and v2; hind's own bundles already contain them.
fn always_allowed() -> Vec<Rule> {
    let c = |major: Option<u32>, minor: Option<u32>, access| Rule {
        allow: true,
        dev: Some(DEV_CHAR),
        major,
        minor,
        access,
    };
    let mut v = vec![
        c(None, None, ACC_MKNOD),
        Rule {
            dev: Some(DEV_BLOCK),
            ..c(None, None, ACC_MKNOD)
        },
    ];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (5, 0),
        (1, 9),
        (1, 8),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        v.push(c(Some(major), Some(minor), ACC_ALL));
    }
    v.push(c(Some(136), None, ACC_ALL));
    v
}

/// Compiles `rules` (in OCI order, [`always_allowed`] appended) into the
/// device program.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let mut all = Vec::with_capacity(rules.len() + 12);
    for r in rules {
        all.extend(Rule::from_oci(r)?);
    }
    all.extend(always_allowed());
    let mut prog = vec![
        // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
        insn(LDX_W, TYPE, R1, 0, 0),
        insn(MOV32_X, ACCESS, TYPE, 0, 0),
        insn(AND32_K, TYPE, 0, 0, 0xffff),
        insn(RSH32_K, ACCESS, 0, 0, 16),
        insn(LDX_W, MAJOR, R1, 4, 0),
        insn(LDX_W, MINOR, R1, 8, 0),
    ];
    // Last rule first. A catch-all ends the program: the verifier refuses
    // code that cannot be reached.
    for r in all.iter().rev() {
        if r.emit(&mut prog) {
            return Ok(prog);
        }
    }
    prog.push(insn(MOV64_K, R0, 0, 0, 1));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    Ok(prog)
}

/// The start of `union bpf_attr` as BPF_PROG_LOAD reads it; the kernel
/// treats the fields after `size_of` as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` as BPF_PROG_ATTACH reads it.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// bpf(2); libc has the syscall number but no wrapper, nix neither.
///
/// # Safety
/// `attr` must be the `union bpf_attr` layout `cmd` expects, and every
/// pointer in it must be valid for what `cmd` does with it.
unsafe fn bpf<T>(cmd: u32, attr: &mut T) -> io::Result<i32> {
    // SAFETY: the caller vouches for `attr`; the kernel reads (and may
    // write) exactly `size_of::<T>()` bytes of it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut T,
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i32)
    }
}

/// Loads `prog`. On a verifier rejection, loads it once more with the
/// verifier's log on, to say why.
fn load(prog: &[Insn]) -> Result<OwnedFd> {
    // The program calls no helper, GPL-only or not.
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"hind_devices");
    let attr = |log: &mut Vec<u8>| ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: if log.is_empty() { 0 } else { 1 },
        log_size: log.len() as u32,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    let mut no_log = Vec::new();
    // SAFETY: a BPF_PROG_LOAD attr whose `insns` (`insn_cnt` of them) and
    // `license` (NUL-terminated) outlive the call; no log buffer.
    let first = unsafe { bpf(BPF_PROG_LOAD, &mut attr(&mut no_log)) };
    let err = match first {
        // SAFETY: a new fd that nothing else owns.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(e) => e,
    };
    let mut log = vec![0u8; 64 * 1024];
    // SAFETY: as above, and `log_buf` is `log_size` writable bytes that
    // outlive the call.
    let again = unsafe { bpf(BPF_PROG_LOAD, &mut attr(&mut log)) };
    if let Ok(fd) = again {
        // SAFETY: a new fd that nothing else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let last: Vec<&str> = text.lines().rev().take(3).collect();
    let detail = if last.is_empty() {
        String::new()
    } else {
        format!(
            " (verifier: {})",
            last.into_iter().rev().collect::<Vec<_>>().join("; ")
        )
    };
    Err(Error::Load(detail, err))
}

/// Compiles `rules` and attaches the program to the cgroup directory
/// `cgroup`, before any process in it touches a device.
pub fn attach(cgroup: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let prog = load(&program(rules)?)?;
    let dir = File::open(cgroup).map_err(|e| Error::Open(cgroup.to_path_buf(), e))?;
    let mut attr = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: a BPF_PROG_ATTACH attr of two open fds; it holds no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }
        .map_err(|e| Error::Attach(cgroup.to_path_buf(), e))?;
    // `prog` closes here: from now on the cgroup holds the only reference.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    /// Runs `prog` as the kernel would for one access: the subset of eBPF
    /// the emitter uses, with r1 pointing at the context.
    fn run(prog: &[Insn], dev: u32, major: u32, minor: u32, access: u32) -> u64 {
        let ctx = [(access << 16) | dev, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
            let imm = i.imm as i64 as u64;
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, R1 as usize, "loads only from the context");
                    r[dst] = ctx[i.off as usize / 4] as u64;
                }
                MOV32_X => r[dst] = r[src] & 0xffff_ffff,
                AND32_K => r[dst] = (r[dst] & imm) & 0xffff_ffff,
                RSH32_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                MOV64_K => r[dst] = imm,
                JEQ_K if r[dst] == imm => pc += i.off as usize,
                JNE_K if r[dst] != imm => pc += i.off as usize,
                JEQ_K | JNE_K => {}
                EXIT => return r[0],
                c => panic!("opcode {c:#x} not emitted by hind"),
            }
        }
    }

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        mm: Option<(i64, i64)>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some((major, minor)) = mm {
            b = b.major(major);
            if minor >= 0 {
                b = b.minor(minor);
            }
        }
        b.build().unwrap()
    }

    fn docker_defaults() -> Vec<LinuxDeviceCgroup> {
        use LinuxDeviceType::*;
        let mut v = vec![
            rule(false, A, None, "rwm"),
            rule(true, C, None, "m"),
            rule(true, B, None, "m"),
        ];
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
            (136, -1),
            (10, 200),
        ] {
            v.push(rule(true, C, Some((major, minor)), "rwm"));
        }
        v
    }

    const RW: u32 = ACC_READ | ACC_WRITE;

    #[test]
    fn docker_defaults_allow_only_the_basic_devices() {
        let p = program(&docker_defaults()).unwrap();
        assert_eq!(run(&p, DEV_CHAR, 1, 3, RW), 1, "null");
        assert_eq!(run(&p, DEV_CHAR, 136, 7, RW), 1, "a pty");
        assert_eq!(run(&p, DEV_CHAR, 10, 200, RW), 1, "tun");
        assert_eq!(run(&p, DEV_CHAR, 1, 11, ACC_WRITE), 0, "kmsg");
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_READ), 0, "sda");
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_MKNOD), 1, "mknod sda");
        assert_eq!(
            run(&p, DEV_BLOCK, 1, 3, ACC_READ),
            0,
            "block 1:3 is not null"
        );
        // The deny-all rule ends the program: no unreachable default.
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
    }

    #[test]
    fn access_subsets_and_last_rule_wins() {
        use LinuxDeviceType::*;
        let mut rules = docker_defaults();
        rules.push(rule(true, C, Some((1, 11)), "w"));
        let p = program(&rules).unwrap();
        assert_eq!(run(&p, DEV_CHAR, 1, 11, ACC_WRITE), 1);
        assert_eq!(run(&p, DEV_CHAR, 1, 11, RW), 0, "read was not granted");
        // A later deny of part of the access wins over an earlier allow.
        rules.push(rule(true, C, Some((1, 11)), "rw"));
        rules.push(rule(false, C, Some((1, 11)), "w"));
        let p = program(&rules).unwrap();
        assert_eq!(run(&p, DEV_CHAR, 1, 11, ACC_READ), 1);
        assert_eq!(run(&p, DEV_CHAR, 1, 11, RW), 0);
        // The always-allowed rules come last, as with libcgroups on v1: a
        // bundle cannot take /dev/null away.
        rules.push(rule(false, C, Some((1, 3)), "rwm"));
        let p = program(&rules).unwrap();
        assert_eq!(run(&p, DEV_CHAR, 1, 3, RW), 1);
    }

    #[test]
    fn no_deny_all_means_allowed_and_privileged_allows_everything() {
        use LinuxDeviceType::*;
        let p = program(&[rule(false, B, Some((8, -1)), "rwm")]).unwrap();
        assert_eq!(run(&p, DEV_BLOCK, 8, 1, ACC_READ), 0);
        assert_eq!(run(&p, DEV_BLOCK, 7, 0, ACC_READ), 1);
        let p = program(&[rule(true, A, None, "rwm")]).unwrap();
        assert_eq!(run(&p, DEV_BLOCK, 8, 1, RW), 1);
        assert_eq!(run(&p, DEV_CHAR, 1, 11, RW | ACC_MKNOD), 1);
    }

    #[test]
    fn bad_rules_are_refused_with_the_rule() {
        use LinuxDeviceType::*;
        let e = program(&[rule(true, C, Some((1, 3)), "rx")]).unwrap_err();
        assert!(e.to_string().contains("c 1:3 rx"), "{e}");
        assert!(program(&[rule(true, C, Some((1 << 40, 3)), "r")]).is_err());
        // FIFOs are not devices: ignored.
        assert!(program(&[rule(false, P, None, "rwm")]).is_ok());
    }

    /// The kernel's side: the verifier accepts the program, and a process
    /// in a cgroup it is attached to gets exactly the devices it allows.
    /// Needs root and a cgroup2 hierarchy (the unified one of a hybrid
    /// host works: the kernel runs v2 device programs there too); skipped
    /// otherwise.
    #[test]
    fn kernel_enforces_the_program() {
        let root = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists());
        let Some(root) = root.filter(|_| nix::unistd::geteuid().is_root()) else {
            eprintln!("skipped: needs root and a cgroup2 hierarchy");
            return;
        };
        let dir = root.join(format!("hind-devices-bpf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rules = docker_defaults();
        rules.push(rule(true, LinuxDeviceType::C, Some((1, 11)), "w"));
        let r = attach(&dir, &rules);
        let out = r.as_ref().ok().map(|_| {
            let procs = std::ffi::CString::new(
                dir.join("cgroup.procs")
                    .into_os_string()
                    .into_encoded_bytes(),
            )
            .unwrap();
            let mut cmd = std::process::Command::new("/bin/sh");
            cmd.arg("-c").arg(
                "t=$(mktemp -d); cd $t; \
                 for d in 'c 1 3' 'c 1 11' 'b 7 0' 'c 1 4'; do \
                   set -- $d; \
                   if mknod n $1 $2 $3; then \
                     (: > n) 2>/dev/null && echo \"$2:$3 w\" || echo \"$2:$3 -\"; rm -f n; \
                   else echo \"$2:$3 nomknod\"; fi; \
                 done; cd /; rm -rf $t",
            );
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec the child only calls open,
            // write and close (async-signal-safe) on a path made before
            // the fork.
            unsafe {
                cmd.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(io::Error::last_os_error());
                    }
                    libc::close(fd);
                    Ok(())
                });
            }
            cmd.output().unwrap()
        });
        // The exited child may linger in the cgroup for a moment (EBUSY).
        for _ in 0..50 {
            if std::fs::remove_dir(&dir).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        r.unwrap();
        let out = out.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text,
            "1:3 w\n1:11 w\n7:0 -\n1:4 -\n",
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
