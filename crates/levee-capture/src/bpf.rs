//! Classic BPF programs for kernel-side sampling.
//!
//! The sampling filter keeps one packet in N, chosen at random by the
//! kernel, and truncates what it keeps to the snap length:
//!
//! ```text
//!   ld  rand            ; A = prandom_u32()   (SKF_AD_OFF + SKF_AD_RANDOM)
//!   mod #N              ; A = A % N
//!   jeq #0, keep, drop
//! keep:
//!   ret #snaplen        ; accept, capture at most snaplen bytes
//! drop:
//!   ret #0              ; reject
//! ```
//!
//! Random rather than "every Nth" so that periodic traffic cannot hide from
//! (or dominate) the sample, and so there is no shared counter in the hot
//! path. With N = 1 the program is just `ret #snaplen`.

/// One classic BPF instruction (same layout as `struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcode pieces from linux/filter.h / linux/bpf_common.h.
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_MOD: u16 = 0x90;
const BPF_JEQ: u16 = 0x10;
const BPF_K: u16 = 0x00;

/// `ld rand`: an absolute load at this magic offset returns a random u32.
pub const LD_RAND_K: u32 = (libc::SKF_AD_OFF + libc::SKF_AD_RANDOM) as u32;

/// `ld rand`.
pub const fn ld_rand() -> Insn {
    Insn {
        code: BPF_LD | BPF_W | BPF_ABS,
        jt: 0,
        jf: 0,
        k: LD_RAND_K,
    }
}

/// `mod #n`.
pub const fn mod_k(n: u32) -> Insn {
    Insn {
        code: BPF_ALU | BPF_MOD | BPF_K,
        jt: 0,
        jf: 0,
        k: n,
    }
}

/// `jeq #k, +jt, +jf`.
pub const fn jeq_k(k: u32, jt: u8, jf: u8) -> Insn {
    Insn {
        code: BPF_JMP | BPF_JEQ | BPF_K,
        jt,
        jf,
        k,
    }
}

/// `ret #k`: accept `k` bytes (0 = drop).
pub const fn ret_k(k: u32) -> Insn {
    Insn {
        code: BPF_RET | BPF_K,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The 1-in-`n` sampling program, capturing at most `snaplen` bytes.
/// `n` of 0 is treated as 1 (a filter must never divide by zero: the kernel
/// rejects `mod #0`).
pub fn sampling_program(n: u32, snaplen: u32) -> Vec<Insn> {
    let snaplen = snaplen.max(1);
    if n <= 1 {
        return vec![ret_k(snaplen)];
    }
    vec![
        ld_rand(),
        mod_k(n),
        jeq_k(0, 0, 1),
        ret_k(snaplen),
        ret_k(0),
    ]
}

/// The program in the kernel's `struct sock_filter` layout.
pub fn to_sock_filters(prog: &[Insn]) -> Vec<libc::sock_filter> {
    prog.iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

/// Runs a program on an abstract packet whose only input is the random
/// value `rand` (the program does not read packet bytes). Used by tests to
/// check the program's semantics, not only its bytes. `None` if the program
/// uses an instruction this tiny interpreter does not know, or falls off
/// the end.
pub fn run(prog: &[Insn], rand: u32) -> Option<u32> {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog.get(pc)?;
        pc += 1;
        match i.code {
            c if c == BPF_LD | BPF_W | BPF_ABS && i.k == LD_RAND_K => a = rand,
            c if c == BPF_ALU | BPF_MOD | BPF_K => a = a.checked_rem(i.k)?,
            c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                pc += usize::from(if a == i.k { i.jt } else { i.jf });
            }
            c if c == BPF_RET | BPF_K => return Some(i.k),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n1_accepts_everything_truncated() {
        assert_eq!(sampling_program(1, 256), vec![ret_k(256)]);
        assert_eq!(sampling_program(0, 256), vec![ret_k(256)]);
        assert_eq!(run(&sampling_program(1, 256), 12345), Some(256));
    }

    #[test]
    fn assembles_the_documented_program() {
        let p = sampling_program(100, 256);
        // Opcodes as `tcpdump -ddd` / bpf_asm print them.
        let raw: Vec<(u16, u8, u8, u32)> = p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
        assert_eq!(
            raw,
            vec![
                (0x20, 0, 0, 0xffff_f038), // ld [SKF_AD_OFF + SKF_AD_RANDOM]
                (0x94, 0, 0, 100),         // mod #100
                (0x15, 0, 1, 0),           // jeq #0, +0, +1
                (0x06, 0, 0, 256),         // ret #256
                (0x06, 0, 0, 0),           // ret #0
            ]
        );
    }

    #[test]
    fn keeps_one_in_n() {
        let p = sampling_program(10, 128);
        let kept = (0..10_000u32).filter(|r| run(&p, *r) == Some(128)).count();
        assert_eq!(kept, 1000);
        assert!((0..10_000u32).all(|r| matches!(run(&p, r), Some(0) | Some(128))));
    }

    #[test]
    fn sock_filter_layout_matches() {
        let f = to_sock_filters(&sampling_program(7, 64));
        assert_eq!(f.len(), 5);
        assert_eq!((f[1].code, f[1].k), (0x94, 7));
        assert_eq!(std::mem::size_of::<libc::sock_filter>(), 8);
    }
}
