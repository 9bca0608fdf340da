//! `mzw1-wss`: a zero-allocation, bare-metal WebSocket server for the PIC32MZW1.
//!
//! Layers, each ignorant of the one above: [`mzw1_pac`] (registers) → [`mac`] (descriptor
//! rings, interrupt) → `net` (Ethernet, ARP, IPv4, ICMP, TCP) → `ws` (handshake, frames,
//! UTF-8) → `service` (the Harmony WSS API and client table).
#![no_std]
#![cfg_attr(target_arch = "mips", feature(asm_experimental_arch))]

/// Defines a function written in MIPS32r2 assembly: its own section (so the linker drops
/// it when unused), a global symbol of the function type, word alignment, and the
/// assembler modes of every hand-written function here (`noreorder`: each branch's delay
/// slot is written out; `noat`: `$at` is not used behind our back), around `body` (a
/// string literal, which purges any `.macro` it defines). Operands (`const`) follow
/// as in `global_asm!`.
#[cfg(all(target_arch = "mips", target_endian = "little"))]
macro_rules! mips_function {
    ($name:literal, $body:literal $(, $($operands:tt)*)?) => {
        core::arch::global_asm!(
            concat!(
                ".section .text.", $name, ", \"ax\", @progbits\n",
                ".globl ", $name, "\n",
                ".type ", $name, ", @function\n",
                ".p2align 2\n",
                ".set push\n.set mips32r2\n.set noreorder\n.set noat\n",
                $name, ":\n",
                $body,
                "\n.set pop\n",
                ".size ", $name, ", . - ", $name, "\n",
            )
            $(, $($operands)*)?
        );
    };
}

pub mod copy;
pub mod mac;
pub mod net;
pub mod service;
pub mod time;
pub mod ws;

#[cfg(all(target_arch = "mips", target_os = "none"))]
pub mod rt;

pub use mzw1_pac as pac;
