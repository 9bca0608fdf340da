//! Register cells.
//!
//! Every ETH, EMAC and EVIC register on the PIC32MZW1 occupies a 16-byte slot: the register
//! itself at +0x0 and three write-only companions, CLR at +0x4, SET at +0x8 and INV at +0xC.
//! Writing 1s to a companion clears, sets or toggles those bits atomically; 0 bits have no
//! effect (pic32mzw1-eth-facts.md §1.1). [`Reg`] models one such slot; [`Word`] models a
//! plain 32-bit register without companions (the EVIC `OFFnnn` registers, §3).
//!
//! The value type `T` is either `u32` or a `bitflags` type, so the driver reads and writes
//! typed flags. The two registers that hold DMA addresses (ETHTXST, ETHRXST) are [`DmaReg`]s,
//! whose `write` is the one `unsafe` register access: it hands the controller an address it
//! will read and write without asking the compiler.

use core::marker::PhantomData;
use volatile_register::{RW, WO};

/// A value that can live in a 32-bit register.
pub trait RegValue: Copy {
    /// The raw register bits.
    fn into_bits(self) -> u32;
    /// A value from raw register bits (unknown bits are kept).
    fn from_bits(bits: u32) -> Self;
}

impl RegValue for u32 {
    #[inline(always)]
    fn into_bits(self) -> u32 {
        self
    }
    #[inline(always)]
    fn from_bits(bits: u32) -> Self {
        bits
    }
}

/// Implements [`RegValue`] for `bitflags` types, keeping every bit (`from_bits_retain`).
#[macro_export]
macro_rules! reg_value_flags {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::reg::RegValue for $t {
            #[inline(always)]
            fn into_bits(self) -> u32 {
                self.bits()
            }
            #[inline(always)]
            fn from_bits(bits: u32) -> Self {
                <$t>::from_bits_retain(bits)
            }
        }
    )*};
}

/// One 16-byte register slot: value, CLR, SET, INV.
#[repr(C)]
pub struct Reg<T: RegValue = u32> {
    value: RW<u32>,
    clr: WO<u32>,
    set: WO<u32>,
    inv: WO<u32>,
    _type: PhantomData<T>,
}

// SAFETY: a register is a hardware cell accessed with single, volatile 32-bit loads and
// stores; what concurrent accesses mean is defined by the hardware, not by Rust's memory
// model, exactly as for the registers of the `cortex-m` crate.
unsafe impl<T: RegValue> Sync for Reg<T> {}

impl<T: RegValue> Reg<T> {
    /// Reads the register.
    #[inline(always)]
    pub fn read(&self) -> T {
        bus::before_read(self.value_addr());
        T::from_bits(self.value.read())
    }

    /// Writes the register.
    #[inline(always)]
    pub fn write(&self, v: T) {
        // SAFETY: a volatile store to a register cell. Registers whose contents become
        // memory addresses are `DmaReg`s, not `Reg`s.
        unsafe { self.value.write(v.into_bits()) };
        bus::after_write(self.value_addr());
    }

    /// Sets the given bits through the SET companion (atomic).
    #[inline(always)]
    pub fn set(&self, v: T) {
        // SAFETY: as for `write`.
        unsafe { self.set.write(v.into_bits()) };
        bus::after_write(self.value_addr() + 8);
    }

    /// Clears the given bits through the CLR companion (atomic).
    #[inline(always)]
    pub fn clear(&self, v: T) {
        // SAFETY: as for `write`.
        unsafe { self.clr.write(v.into_bits()) };
        bus::after_write(self.value_addr() + 4);
    }

    /// Toggles the given bits through the INV companion (atomic).
    #[inline(always)]
    pub fn toggle(&self, v: T) {
        // SAFETY: as for `write`.
        unsafe { self.inv.write(v.into_bits()) };
        bus::after_write(self.value_addr() + 12);
    }

    #[inline(always)]
    fn value_addr(&self) -> usize {
        &self.value as *const RW<u32> as usize
    }
}

/// A register slot that holds a physical DMA address (ETHTXST, ETHRXST).
#[repr(C)]
pub struct DmaReg {
    inner: Reg<u32>,
}

impl DmaReg {
    /// Reads the address (the controller updates it as it walks the descriptor list).
    #[inline(always)]
    pub fn read(&self) -> u32 {
        self.inner.read()
    }

    /// Writes the physical start address of a descriptor list.
    ///
    /// # Safety
    /// `phys` must be the 4-byte-aligned physical address of a descriptor list, and the
    /// descriptors and every buffer they point to must stay valid, and not be accessed in a
    /// conflicting way, for as long as the controller may use them.
    #[inline(always)]
    pub unsafe fn write(&self, phys: u32) {
        self.inner.write(phys)
    }

    /// Clears the register through its CLR companion (no DMA may be active).
    #[inline(always)]
    pub fn clear_all(&self) {
        self.inner.clear(u32::MAX)
    }
}

/// A plain 32-bit register without CLR/SET/INV companions.
#[repr(C)]
pub struct Word<T: RegValue = u32> {
    value: RW<u32>,
    _type: PhantomData<T>,
}

// SAFETY: see `Reg`.
unsafe impl<T: RegValue> Sync for Word<T> {}

impl<T: RegValue> Word<T> {
    /// Reads the register.
    #[inline(always)]
    pub fn read(&self) -> T {
        bus::before_read(self.addr());
        T::from_bits(self.value.read())
    }

    /// Writes the register.
    #[inline(always)]
    pub fn write(&self, v: T) {
        // SAFETY: see `Reg::write`.
        unsafe { self.value.write(v.into_bits()) };
        bus::after_write(self.addr());
    }

    #[inline(always)]
    fn addr(&self) -> usize {
        &self.value as *const RW<u32> as usize
    }
}

/// Bus-cycle notifications for the simulated board.
///
/// On silicon the register file sees every bus cycle. On the host, the simulated board
/// (crate `mzw1-sim`) plays the silicon: it installs a hook that is told the address of
/// each register access, right after a write lands and right before a read samples, so it
/// reacts to a write to SET/CLR/INV or to a read of a busy flag exactly when the firmware
/// makes it. On the target this module compiles to nothing.
pub mod bus {
    /// What kind of access the firmware made.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Access {
        /// A read is about to sample the register.
        Read,
        /// A write has just been stored.
        Write,
    }

    /// Called with the address of the accessed 32-bit word.
    pub type Hook = fn(addr: usize, access: Access);

    #[cfg(not(target_os = "none"))]
    mod imp {
        use super::{Access, Hook};
        use core::sync::atomic::{AtomicPtr, Ordering};

        static HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

        /// Installs the process-wide hook (the simulated board does this once).
        pub fn install(hook: Hook) {
            HOOK.store(hook as *mut (), Ordering::Release);
        }

        #[inline(always)]
        pub(crate) fn notify(addr: usize, access: Access) {
            let p = HOOK.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: only `install` stores into HOOK, and it stores a `Hook`.
                let hook: Hook = unsafe { core::mem::transmute::<*mut (), Hook>(p) };
                hook(addr, access);
            }
        }
    }

    #[cfg(not(target_os = "none"))]
    pub use imp::install;

    #[inline(always)]
    pub(crate) fn before_read(_addr: usize) {
        #[cfg(not(target_os = "none"))]
        imp::notify(_addr, Access::Read);
    }

    #[inline(always)]
    pub(crate) fn after_write(_addr: usize) {
        #[cfg(not(target_os = "none"))]
        imp::notify(_addr, Access::Write);
    }
}
