//! A classic BPF emitter for seccomp filters: the handful of instructions a
//! filter needs (load a word of `struct seccomp_data`, AND a constant,
//! compare-and-branch, return), laid out so every jump fits.
//!
//! Classic BPF only jumps forward, so the program is built back to front:
//! whatever a jump targets has been emitted before the jump itself, and its
//! distance is known the moment the jump is written. A conditional jump
//! reaches at most 255 instructions (`jt`/`jf` are `u8`); a farther target
//! is reached through an unconditional `JA` (32-bit offset) placed right
//! after the jump. See Documentation/networking/filter.rst and
//! Documentation/userspace-api/seccomp_filter.rst in the kernel tree.

/// `struct sock_filter`, as the kernel reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Size of one [`Insn`] in a serialised program.
pub const INSN_BYTES: usize = 8;

/// The kernel refuses longer programs (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

// Opcodes (include/uapi/linux/bpf_common.h).
pub const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
pub const ALU_AND_K: u16 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
pub const ALU_SUB_K: u16 = 0x04 | 0x10; // BPF_ALU | BPF_SUB | BPF_K
pub const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub const JMP_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
pub const JMP_JGT_K: u16 = 0x05 | 0x20;
pub const JMP_JGE_K: u16 = 0x05 | 0x30;
pub const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// An unsigned comparison of the accumulator with a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Gt,
    Ge,
}

/// Where an emitted instruction sits, counted from the program's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// A program under construction, last instruction first.
#[derive(Debug, Default)]
pub struct Builder {
    rev: Vec<Insn>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Instructions emitted so far.
    pub fn len(&self) -> usize {
        self.rev.len()
    }

    fn push(&mut self, insn: Insn) -> Label {
        self.rev.push(insn);
        Label(self.rev.len() - 1)
    }

    /// Forward distance from an instruction about to be pushed to `to`.
    fn distance(&self, to: Label) -> usize {
        self.rev.len() - to.0 - 1
    }

    /// `return k` (a `SECCOMP_RET_*` value).
    pub fn ret(&mut self, k: u32) -> Label {
        self.push(Insn {
            code: RET_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `A = *(u32 *)(seccomp_data + offset)`.
    pub fn load(&mut self, offset: u32) -> Label {
        self.push(Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: offset,
        })
    }

    /// `A &= k`.
    pub fn and(&mut self, k: u32) -> Label {
        self.push(Insn {
            code: ALU_AND_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `A -= k`.
    pub fn sub(&mut self, k: u32) -> Label {
        self.push(Insn {
            code: ALU_SUB_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `goto to` with a 32-bit offset.
    pub fn goto(&mut self, to: Label) -> Label {
        let off = self.distance(to) as u32;
        self.push(Insn {
            code: JMP_JA,
            jt: 0,
            jf: 0,
            k: off,
        })
    }

    /// `if (A cmp k) goto t else goto f`. A target out of `u8` reach gets
    /// a `JA` trampoline right after the jump (each trampoline pushes the
    /// other target one further, hence the loop).
    pub fn jump(&mut self, cmp: Cmp, k: u32, mut t: Label, mut f: Label) -> Label {
        loop {
            let (dt, df) = (self.distance(t), self.distance(f));
            if dt <= u8::MAX as usize && df <= u8::MAX as usize {
                let code = match cmp {
                    Cmp::Eq => JMP_JEQ_K,
                    Cmp::Gt => JMP_JGT_K,
                    Cmp::Ge => JMP_JGE_K,
                };
                return self.push(Insn {
                    code,
                    jt: dt as u8,
                    jf: df as u8,
                    k,
                });
            }
            if df > u8::MAX as usize {
                f = self.goto(f);
            } else {
                t = self.goto(t);
            }
        }
    }

    /// The program in execution order.
    pub fn finish(mut self) -> Vec<Insn> {
        self.rev.reverse();
        self.rev
    }
}

/// Serialises a program as the kernel's `sock_filter` array (native byte
/// order: the shim and init run on the same machine).
pub fn to_bytes(prog: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * INSN_BYTES);
    for i in prog {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// The inverse of [`to_bytes`]; `None` unless `bytes` is a whole, non-empty
/// program of at most [`MAX_INSNS`] instructions.
pub fn from_bytes(bytes: &[u8]) -> Option<Vec<Insn>> {
    let count = bytes.len() / INSN_BYTES;
    if count == 0 || count * INSN_BYTES != bytes.len() || count > MAX_INSNS {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INSN_BYTES)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// Checks what the kernel's verifier would: every jump lands inside the
/// program, and the last instruction returns, so a cached program that
/// was damaged is recompiled rather than refused at load time.
pub fn well_formed(prog: &[Insn]) -> bool {
    let n = prog.len();
    if n == 0 || n > MAX_INSNS || prog[n - 1].code != RET_K {
        return false;
    }
    prog.iter().enumerate().all(|(pc, i)| match i.code {
        RET_K | LD_W_ABS | ALU_AND_K | ALU_SUB_K => true,
        JMP_JA => (pc as u64 + 1 + i.k as u64) < n as u64,
        JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => pc + 1 + (i.jt.max(i.jf) as usize) < n,
        _ => false,
    })
}

/// Runs `prog` on a `struct seccomp_data` laid out as bytes: a reference
/// interpreter for the instructions this module emits, for tests.
#[cfg(test)]
pub fn run(prog: &[Insn], data: &[u8]) -> u32 {
    trace(prog, data).0
}

/// [`run`], also counting the instructions executed.
#[cfg(test)]
pub fn trace(prog: &[Insn], data: &[u8]) -> (u32, usize) {
    let mut a: u32 = 0;
    let mut pc = 0;
    let mut steps = 0;
    loop {
        let i = prog[pc];
        pc += 1;
        steps += 1;
        match i.code {
            LD_W_ABS => {
                let o = i.k as usize;
                a = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
            }
            ALU_AND_K => a &= i.k,
            ALU_SUB_K => a = a.wrapping_sub(i.k),
            JMP_JA => pc += i.k as usize,
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                let hit = match i.code {
                    JMP_JEQ_K => a == i.k,
                    JMP_JGT_K => a > i.k,
                    _ => a >= i.k,
                };
                pc += if hit { i.jt } else { i.jf } as usize;
            }
            RET_K => return (i.k, steps),
            c => panic!("unknown opcode {c:#x} at {}", pc - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_targets_get_trampolines() {
        let mut b = Builder::new();
        let far = b.ret(1);
        for _ in 0..300 {
            b.ret(2);
        }
        let near = b.ret(3);
        // Both directions: the far one needs a JA, the near one not.
        let j = b.jump(Cmp::Eq, 7, far, near);
        b.load(0);
        let _ = j;
        let prog = b.finish();
        assert!(well_formed(&prog));
        let mut data = [0u8; 64];
        data[..4].copy_from_slice(&7u32.to_ne_bytes());
        assert_eq!(run(&prog, &data), 1);
        data[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(run(&prog, &data), 3);
    }

    #[test]
    fn both_targets_far() {
        let mut b = Builder::new();
        let t = b.ret(10);
        let f = b.ret(20);
        for _ in 0..600 {
            b.ret(0);
        }
        b.jump(Cmp::Ge, 5, t, f);
        b.load(0);
        let prog = b.finish();
        assert!(well_formed(&prog));
        let mut data = [0u8; 64];
        data[..4].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(run(&prog, &data), 10);
        data[..4].copy_from_slice(&4u32.to_ne_bytes());
        assert_eq!(run(&prog, &data), 20);
    }

    #[test]
    fn bytes_round_trip() {
        let prog = vec![
            Insn {
                code: LD_W_ABS,
                jt: 0,
                jf: 0,
                k: 4,
            },
            Insn {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            },
        ];
        let bytes = to_bytes(&prog);
        assert_eq!(bytes.len(), 16);
        assert_eq!(from_bytes(&bytes), Some(prog));
        assert_eq!(from_bytes(&bytes[..15]), None);
        assert_eq!(from_bytes(&[]), None);
    }

    #[test]
    fn malformed_programs_are_caught() {
        let jump_out = [
            Insn {
                code: JMP_JA,
                jt: 0,
                jf: 0,
                k: 5,
            },
            Insn {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: 0,
            },
        ];
        assert!(!well_formed(&jump_out));
        let no_ret = [Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        assert!(!well_formed(&no_ret));
    }
}
