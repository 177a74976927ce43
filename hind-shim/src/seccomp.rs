//! Seccomp: turns the spec's `linux.seccomp` (OCI config-linux.md,
//! "Seccomp") into the classic BPF program hind-init loads right before it
//! execs the container's command, and caches compiled programs by content
//! so that containers with the same profile (every default container) skip
//! the compile.
//!
//! The program, in execution order:
//!
//! 1. load `seccomp_data.arch`; one branch per architecture the filter
//!    covers, anything else is killed (a process may switch ABI, e.g. to
//!    i386 with `int 0x80`, and must not escape the filter that way);
//! 2. load `seccomp_data.nr` and walk a binary search tree over ranges of
//!    syscall numbers, each range ending in one action: a run of allowed
//!    syscalls costs one range, so a Docker-like allowlist takes about ten
//!    comparisons per syscall rather than hundreds;
//! 3. a syscall with argument rules ends in a block that tries its rules in
//!    order (first match wins: its action), then its unconditional rule's
//!    action if it has one, else the default action.
//!
//! Syscall names are resolved per architecture ([`syscalls`]); a name an
//! architecture does not have is skipped, as libseccomp does. Arguments are
//! compared as 64-bit values, high word first, except on the 32-bit ABIs
//! (i386, arm), whose arguments are 32 bits and are compared in the low
//! word only.

mod bpf;
mod syscalls;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};
use protocol::init::SeccompFilter;
use sha2::{Digest, Sha256};

use bpf::{Builder, Cmp, Label};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("linux.seccomp: {0} is not supported")]
    Unsupported(&'static str),
    #[error("linux.seccomp.syscalls[{rule}].args: index {index} is out of range (0 to 5)")]
    ArgIndex { rule: usize, index: usize },
    #[error("linux.seccomp.{field}: errno {value} is out of range (0 to 4095)")]
    Errno { field: String, value: u32 },
    #[error("linux.seccomp: the filter takes {0} instructions, more than the kernel's 4096")]
    TooLong(usize),
    #[error("seccomp is not supported on this architecture ({0})")]
    Arch(&'static str),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Changes whenever the same section would compile to another program (the
/// emitter, the layout or `syscalls.rs` changed): it is part of the cache
/// key, so old entries are never used. The `compiled_program_is_pinned`
/// test fails until it is bumped.
const COMPILER_VERSION: u32 = 2;

/// `AUDIT_ARCH_*` (include/uapi/linux/audit.h): what `seccomp_data.arch`
/// holds for each ABI.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// x32 shares x86_64's audit arch and sets this bit in the syscall number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `struct seccomp_data` offsets: `int nr; __u32 arch; __u64
/// instruction_pointer; __u64 args[6];`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;
/// Which half of a 64-bit argument sits first in memory.
const LOW_FIRST: bool = cfg!(target_endian = "little");

/// What a process that uses an ABI the filter does not cover gets, as
/// libseccomp's default "bad arch" action: no syscall of it is vetted.
const RET_BAD_ARCH: u32 = libc::SECCOMP_RET_KILL_PROCESS;
/// Kernel's MAX_ERRNO: larger errno values are clamped by the kernel.
const MAX_ERRNO: u32 = 4095;

/// The machine a filter is compiled for: its native ABI and the compat
/// ABIs its kernel may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    X86_64,
    Aarch64,
}

impl Host {
    /// This build's machine.
    pub fn native() -> Result<Host> {
        if cfg!(target_arch = "x86_64") {
            Ok(Host::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Ok(Host::Aarch64)
        } else {
            Err(Error::Arch(std::env::consts::ARCH))
        }
    }

    fn name(self) -> &'static str {
        match self {
            Host::X86_64 => "x86_64",
            Host::Aarch64 => "aarch64",
        }
    }
}

/// One syscall ABI: its numbers and how wide its arguments are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    X86_64,
    X32,
    X86,
    Aarch64,
    Arm,
}

impl Abi {
    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => syscalls::X86_64,
            Abi::X32 => syscalls::X32,
            Abi::X86 => syscalls::X86,
            Abi::Aarch64 => syscalls::AARCH64,
            Abi::Arm => syscalls::ARM,
        }
    }

    /// 32-bit ABIs pass 32-bit arguments: the high word is always zero.
    fn wide(self) -> bool {
        !matches!(self, Abi::X86 | Abi::Arm)
    }

    /// The ABI's numbers by name.
    fn numbers(self) -> HashMap<&'static str, u32> {
        self.table().iter().copied().collect()
    }

    #[cfg(test)]
    fn number(self, name: &str) -> Option<u32> {
        self.numbers().get(name).copied()
    }
}

/// One argument condition, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    index: u32,
    op: Op,
    value: u64,
    value_two: u64,
}

/// One profile rule, validated, before its names are resolved.
struct Rule<'a> {
    names: &'a [String],
    action: u32,
    conds: Vec<Cond>,
}

/// Everything a profile says about one syscall number on one ABI.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct SyscallRules {
    /// Argument rules in profile order: conditions (all must hold), action.
    conditional: Vec<(Vec<Cond>, u32)>,
    /// The first rule without conditions, if any.
    unconditional: Option<u32>,
}

/// What a range of syscall numbers ends in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Ret(u32),
    Rules {
        conditional: Vec<(Vec<Cond>, u32)>,
        fallback: u32,
        wide: bool,
    },
}

/// The `SECCOMP_RET_*` value of an action; `errno` defaults to EPERM as the
/// runtime spec says.
fn ret_value(action: Action, errno: Option<u32>, field: &str) -> Result<u32> {
    let data = |e: Option<u32>| -> Result<u32> {
        let e = e.unwrap_or(libc::EPERM as u32);
        if e > MAX_ERRNO {
            return Err(Error::Errno {
                field: field.to_string(),
                value: e,
            });
        }
        Ok(e)
    };
    Ok(match action {
        Action::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
        Action::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data(errno)?,
        Action::ScmpActKill | Action::ScmpActKillThread => libc::SECCOMP_RET_KILL_THREAD,
        Action::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        Action::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        Action::ScmpActTrace => libc::SECCOMP_RET_TRACE | data(errno)?,
        Action::ScmpActLog => libc::SECCOMP_RET_LOG,
        // A notify filter needs a seccomp agent listening on a socket.
        Action::ScmpActNotify => return Err(Error::Unsupported("SCMP_ACT_NOTIFY")),
    })
}

fn rules(s: &LinuxSeccomp) -> Result<Vec<Rule<'_>>> {
    let mut out = Vec::new();
    for (i, r) in s.syscalls().iter().flatten().enumerate() {
        let action = ret_value(
            r.action(),
            r.errno_ret(),
            &format!("syscalls[{i}].errnoRet"),
        )?;
        let mut conds = Vec::new();
        for a in r.args().iter().flatten() {
            if a.index() > 5 {
                return Err(Error::ArgIndex {
                    rule: i,
                    index: a.index(),
                });
            }
            conds.push(Cond {
                index: a.index() as u32,
                op: a.op(),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        out.push(Rule {
            names: r.names(),
            action,
            conds,
        });
    }
    Ok(out)
}

/// `SECCOMP_FILTER_FLAG_*` for seccomp(2). WAIT_KILLABLE_RECV only
/// concerns a notify listener, which hind does not support, and the kernel
/// refuses it without one: dropped.
pub fn flags(s: &LinuxSeccomp) -> u32 {
    s.flags()
        .iter()
        .flatten()
        .map(|f| match f {
            Flag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            Flag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            Flag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => 0,
        } as u32)
        .fold(0, |a, b| a | b)
}

/// The syscalls of `abi` the rules name, with their rules.
fn resolve(abi: Abi, rules: &[Rule]) -> BTreeMap<u32, SyscallRules> {
    let numbers = abi.numbers();
    let mut out: BTreeMap<u32, SyscallRules> = BTreeMap::new();
    for r in rules {
        for name in r.names {
            let Some(&nr) = numbers.get(name.as_str()) else {
                continue;
            };
            let e = out.entry(nr).or_default();
            if r.conds.is_empty() {
                e.unconditional.get_or_insert(r.action);
            } else {
                e.conditional.push((r.conds.clone(), r.action));
            }
        }
    }
    out
}

/// Splits `[lo, hi)` into ranges of syscall numbers, each with what it
/// ends in: `default` between the syscalls the rules name.
fn ranges(abi: Abi, rules: &[Rule], default: u32, lo: u64, hi: u64, out: &mut Vec<(u64, Target)>) {
    let mut next = lo;
    for (nr, r) in resolve(abi, rules) {
        let nr = nr as u64;
        if nr < lo || nr >= hi {
            continue;
        }
        if nr > next {
            out.push((next, Target::Ret(default)));
        }
        let fallback = r.unconditional.unwrap_or(default);
        let mut conditional = r.conditional;
        // Trailing rules whose action is the fallback change nothing.
        while conditional.last().is_some_and(|(_, a)| *a == fallback) {
            conditional.pop();
        }
        out.push((
            nr,
            if conditional.is_empty() {
                Target::Ret(fallback)
            } else {
                Target::Rules {
                    conditional,
                    fallback,
                    wide: abi.wide(),
                }
            },
        ));
        next = nr + 1;
    }
    if next < hi {
        out.push((next, Target::Ret(default)));
    }
}

/// Merges neighbouring ranges that end in the same return.
fn merge(ranges: Vec<(u64, Target)>) -> Vec<(u64, Target)> {
    let mut out: Vec<(u64, Target)> = Vec::with_capacity(ranges.len());
    for (start, t) in ranges {
        match (out.last(), &t) {
            (Some((_, Target::Ret(a))), Target::Ret(b)) if a == b => {}
            _ => out.push((start, t)),
        }
    }
    out
}

/// Offset of the low or high word of argument `index`.
fn arg_word(index: u32, high: bool) -> u32 {
    OFF_ARGS + 8 * index + if high == LOW_FIRST { 4 } else { 0 }
}

/// Emits `load word; [A &= mask]; if (A cmp k) goto t else f`, returning
/// the label of the load.
fn word_test(
    b: &mut Builder,
    off: u32,
    mask: Option<u32>,
    cmp: Cmp,
    k: u32,
    t: Label,
    f: Label,
) -> Label {
    b.jump(cmp, k, t, f);
    if let Some(m) = mask {
        b.and(m);
    }
    b.load(off)
}

/// Emits the test of one condition: on to `ok` when it holds, to `fail`
/// otherwise. Returns where the test starts.
fn cond(b: &mut Builder, c: &Cond, wide: bool, ok: Label, fail: Label) -> Label {
    let (lo, hi) = (arg_word(c.index, false), arg_word(c.index, true));
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (v_lo, v_hi) = split(c.value);
    match c.op {
        Op::ScmpCmpEq | Op::ScmpCmpNe => {
            // NE is EQ with the outcomes swapped.
            let (t, f) = if c.op == Op::ScmpCmpEq {
                (ok, fail)
            } else {
                (fail, ok)
            };
            let low = word_test(b, lo, None, Cmp::Eq, v_lo, t, f);
            if !wide {
                return low;
            }
            word_test(b, hi, None, Cmp::Eq, v_hi, low, f)
        }
        Op::ScmpCmpMaskedEq => {
            // (arg & value) == valueTwo, word by word.
            let (d_lo, d_hi) = split(c.value_two);
            let low = word_test(b, lo, Some(v_lo), Cmp::Eq, d_lo, ok, fail);
            if !wide {
                return low;
            }
            word_test(b, hi, Some(v_hi), Cmp::Eq, d_hi, low, fail)
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe | Op::ScmpCmpLt | Op::ScmpCmpLe => {
            // LT is "not GE" and LE "not GT": the same test, outcomes swapped.
            let (cmp, t, f) = match c.op {
                Op::ScmpCmpGt => (Cmp::Gt, ok, fail),
                Op::ScmpCmpGe => (Cmp::Ge, ok, fail),
                Op::ScmpCmpLt => (Cmp::Ge, fail, ok),
                _ => (Cmp::Gt, fail, ok),
            };
            let low = word_test(b, lo, None, cmp, v_lo, t, f);
            if !wide {
                return low;
            }
            // High words decide unless equal; then the low words do.
            let equal = b.jump(Cmp::Eq, v_hi, low, f);
            b.jump(Cmp::Gt, v_hi, t, equal);
            b.load(hi)
        }
    }
}

/// Emits what a range ends in; returns where it starts.
fn target(b: &mut Builder, t: &Target) -> Label {
    match t {
        Target::Ret(v) => b.ret(*v),
        Target::Rules {
            conditional,
            fallback,
            wide,
        } => {
            let mut next = b.ret(*fallback);
            for (conds, action) in conditional.iter().rev() {
                let mut cont = b.ret(*action);
                for c in conds.iter().rev() {
                    cont = cond(b, c, *wide, cont, next);
                }
                next = cont;
            }
            next
        }
    }
}

/// Emits a binary search over `ranges` (the accumulator holds the syscall
/// number); returns where it starts.
fn tree(b: &mut Builder, ranges: &[(u64, Target)]) -> Label {
    if let [(_, t)] = ranges {
        return target(b, t);
    }
    let mid = ranges.len() / 2;
    let right = tree(b, &ranges[mid..]);
    let left = tree(b, &ranges[..mid]);
    b.jump(Cmp::Ge, ranges[mid].0 as u32, right, left)
}

/// One `seccomp_data.arch` value and how its syscall numbers are sorted.
struct Group {
    audit: u32,
    ranges: Vec<(u64, Target)>,
    /// x86_64 with x32: x32's own calls (512 and up, less the x32 bit).
    x32_own: Option<Vec<(u64, Target)>>,
}

/// x32 numbers below this (less the x32 bit) are x86_64's "common"
/// entries: the same call as x86_64's number (arch/x86/entry/syscalls/
/// syscall_64.tbl). From here on come x32's own entry points.
const X32_OWN: u64 = 512;

/// Emits the code for one group, starting with the load of the syscall
/// number; returns where it starts.
fn group(b: &mut Builder, g: &Group, default: u32) -> Label {
    let main = tree(b, &g.ranges);
    let Some(own) = &g.x32_own else {
        return b.load(OFF_NR);
    };
    // An x32 call whose number (less the bit) is below 512 is the same
    // call as x86_64's: it takes x86_64's rules, through the same tree.
    // (A number x86_64 alone has, such as 16 (ioctl), gets ioctl's rules
    // where libseccomp would give the default: either way it fails, with
    // ENOSYS from the kernel.) x32's own entry points have a tree of
    // their own. Both trees come after this in the program, as BPF jumps
    // only forward.
    let own = tree(b, own);
    b.jump(Cmp::Ge, X32_OWN as u32, own, main);
    let sub = b.sub(X32_SYSCALL_BIT);
    // Above x32's numbers: -1 is what a tracer uses to skip a call.
    let beyond = b.ret(default);
    let x32 = b.jump(Cmp::Ge, 1 << 31, beyond, sub);
    b.jump(Cmp::Ge, X32_SYSCALL_BIT, x32, main);
    b.load(OFF_NR)
}

/// Compiles `s` for `host`.
fn compile(s: &LinuxSeccomp, host: Host) -> Result<Vec<bpf::Insn>> {
    if s.listener_path().is_some() {
        return Err(Error::Unsupported("listenerPath (SCMP_ACT_NOTIFY)"));
    }
    let default = ret_value(s.default_action(), s.default_errno_ret(), "defaultErrnoRet")?;
    let rules = rules(s)?;
    let listed = |a: Arch| s.architectures().iter().flatten().any(|x| *x == a);
    let all = |abi: Abi| {
        let mut r = Vec::new();
        ranges(abi, &rules, default, 0, 1 << 32, &mut r);
        merge(r)
    };
    // The native ABI is always covered (as libseccomp does); the compat
    // ABIs only when the profile lists them.
    let mut groups = Vec::new();
    match host {
        Host::X86_64 => {
            let x32 = listed(Arch::ScmpArchX32);
            let mut r = Vec::new();
            ranges(
                Abi::X86_64,
                &rules,
                default,
                0,
                X32_SYSCALL_BIT as u64,
                &mut r,
            );
            if !x32 {
                r.push((X32_SYSCALL_BIT as u64, Target::Ret(RET_BAD_ARCH)));
                // Above: no ABI's numbers; -1 is what a tracer uses to
                // skip a call and gets the default action.
                r.push((1 << 31, Target::Ret(default)));
            }
            let x32_own = x32.then(|| {
                let mut own = Vec::new();
                let bit = X32_SYSCALL_BIT as u64;
                ranges(Abi::X32, &rules, default, bit + X32_OWN, 1 << 31, &mut own);
                merge(own.into_iter().map(|(n, t)| (n - bit, t)).collect())
            });
            groups.push(Group {
                audit: AUDIT_ARCH_X86_64,
                ranges: merge(r),
                x32_own,
            });
            if listed(Arch::ScmpArchX86) {
                groups.push(Group {
                    audit: AUDIT_ARCH_I386,
                    ranges: all(Abi::X86),
                    x32_own: None,
                });
            }
        }
        Host::Aarch64 => {
            groups.push(Group {
                audit: AUDIT_ARCH_AARCH64,
                ranges: all(Abi::Aarch64),
                x32_own: None,
            });
            if listed(Arch::ScmpArchArm) {
                groups.push(Group {
                    audit: AUDIT_ARCH_ARM,
                    ranges: all(Abi::Arm),
                    x32_own: None,
                });
            }
        }
    }

    let mut b = Builder::new();
    let mut starts = Vec::new();
    for g in groups.iter().rev() {
        starts.push((g.audit, group(&mut b, g, default)));
    }
    let mut next = b.ret(RET_BAD_ARCH);
    for (audit, start) in starts {
        next = b.jump(Cmp::Eq, audit, start, next);
    }
    b.load(OFF_ARCH);
    if b.len() > bpf::MAX_INSNS {
        return Err(Error::TooLong(b.len()));
    }
    Ok(b.finish())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache key: sha256 of the compiler version, the machine and the
/// section's canonical JSON. The section is serialised from its typed
/// form, whose fields come in one fixed order with no whitespace, so the
/// same content gives the same bytes however config.json was written.
fn cache_key(s: &LinuxSeccomp, host: Host) -> Option<String> {
    let mut h = Sha256::new();
    h.update(format!("hind seccomp {COMPILER_VERSION} {}\n", host.name()));
    h.update(serde_json::to_vec(s).ok()?);
    Some(hex(&h.finalize()))
}

/// A cache file: this magic, the sha256 of the program, the program. The
/// digest catches a file a crash left short (entries are not fsynced: a
/// damaged one is simply compiled again).
const CACHE_MAGIC: &[u8; 8] = b"hindbpf1";

fn read_cached(path: &Path) -> Option<Vec<u8>> {
    let data = fs::read(path).ok()?;
    let (magic, rest) = data.split_at_checked(CACHE_MAGIC.len())?;
    let (digest, prog) = rest.split_at_checked(32)?;
    if magic != CACHE_MAGIC || Sha256::digest(prog).as_slice() != digest {
        return None;
    }
    bpf::well_formed(&bpf::from_bytes(prog)?).then(|| prog.to_vec())
}

/// Stores a program under `dir` (0700) as `<key>.bpf` (0600): written to a
/// temp file, then renamed, so a reader sees all of it or nothing, and two
/// shims storing the same program at once both succeed.
fn store(dir: &Path, key: &str, prog: &[u8]) -> io::Result<PathBuf> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(format!("{key}.bpf"));
    let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(CACHE_MAGIC)?;
        f.write_all(&Sha256::digest(prog))?;
        f.write_all(prog)?;
        fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| path)
}

/// The filter for `s` on this machine. With a `cache` dir, a program an
/// earlier container compiled from the same section is read from there
/// (and a fresh one stored there); a cache that cannot be read or written
/// costs a compile, never the container.
pub fn filter(s: &LinuxSeccomp, cache: Option<&Path>) -> Result<SeccompFilter> {
    let host = Host::native()?;
    let flags = flags(s);
    let key = cache.and_then(|_| cache_key(s, host));
    if let (Some(dir), Some(key)) = (cache, &key) {
        if let Some(program) = read_cached(&dir.join(format!("{key}.bpf"))) {
            return Ok(SeccompFilter { program, flags });
        }
    }
    let program = bpf::to_bytes(&compile(s, host)?);
    if let (Some(dir), Some(key)) = (cache, &key) {
        match store(dir, key, &program) {
            Ok(p) => log::debug!(
                "seccomp: compiled {}, cached as {}",
                program.len() / 8,
                p.display()
            ),
            Err(e) => log::warn!("seccomp: cache the filter in {}: {e}", dir.display()),
        }
    }
    Ok(SeccompFilter { program, flags })
}

#[cfg(test)]
mod tests;
