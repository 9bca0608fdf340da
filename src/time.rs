//! Time as the firmware sees it: a millisecond clock passed in by the caller.
//!
//! Every layer takes `now` as an argument (as smoltcp does) rather than reading a clock:
//! on the target it comes from CP0 Count, on the simulated board from the virtual clock,
//! so a 30 s idle timeout can be tested in milliseconds of real time. Instants wrap after
//! 2^32 ms (49.7 days); intervals are compared with wrapping arithmetic and must stay
//! below 2^31 ms.

use core::num::NonZeroU32;

/// A point in time, in milliseconds since an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Instant(pub u32);

impl Instant {
    /// The instant `ms` milliseconds after the origin.
    #[inline(always)]
    pub const fn from_millis(ms: u32) -> Instant {
        Instant(ms)
    }

    /// Milliseconds since the origin (wrapping).
    #[inline(always)]
    pub const fn millis(self) -> u32 {
        self.0
    }

    /// Milliseconds elapsed from `earlier` to `self` (0 if `earlier` is later).
    #[inline(always)]
    pub const fn since(self, earlier: Instant) -> u32 {
        let d = self.0.wrapping_sub(earlier.0);
        if d > i32::MAX as u32 { 0 } else { d }
    }

    /// Whether `self` is at or after `other`.
    #[inline(always)]
    pub const fn reached(self, other: Instant) -> bool {
        self.0.wrapping_sub(other.0) <= i32::MAX as u32
    }

    /// The instant `ms` milliseconds later.
    #[inline(always)]
    pub const fn plus(self, ms: u32) -> Instant {
        Instant(self.0.wrapping_add(ms))
    }
}

/// A deadline that may be unset, in 4 bytes (an `Option<Instant>` takes 8): the instant
/// is kept as a non-zero count of milliseconds by setting its lowest bit, so a deadline
/// falls due up to 1 ms late (no timeout here is that fine: the shortest RTO is hundreds
/// of milliseconds), and setting one costs a single OR, with no test for zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline(Option<NonZeroU32>);

impl Deadline {
    /// No deadline.
    pub const NONE: Deadline = Deadline(None);

    /// A deadline at `t`, or 1 ms later if `t` is even.
    #[inline(always)]
    pub const fn at(t: Instant) -> Deadline {
        Deadline(NonZeroU32::new(t.0 | 1))
    }

    /// The deadline, if one is set.
    #[inline(always)]
    pub const fn get(self) -> Option<Instant> {
        match self.0 {
            Some(ms) => Some(Instant(ms.get())),
            None => None,
        }
    }

    /// Whether no deadline is set.
    #[inline(always)]
    pub const fn is_none(self) -> bool {
        self.0.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::Instant;

    #[test]
    fn intervals_survive_wrap_around() {
        let a = Instant(u32::MAX - 5);
        let b = a.plus(10);
        assert_eq!(b.0, 4);
        assert_eq!(b.since(a), 10);
        assert!(b.reached(a));
        assert!(!a.reached(b));
        assert_eq!(a.since(b), 0);
    }

    #[test]
    fn deadlines_are_four_bytes_at_most_1_ms_late_and_never_lost_at_zero() {
        use super::Deadline;
        assert_eq!(core::mem::size_of::<Deadline>(), 4);
        assert!(Deadline::NONE.is_none());
        assert_eq!(Deadline::at(Instant(7)).get(), Some(Instant(7)));
        assert_eq!(Deadline::at(Instant(8)).get(), Some(Instant(9)));
        assert_eq!(
            Deadline::at(Instant(u32::MAX)).get(),
            Some(Instant(u32::MAX))
        );
        // The clock's 0 is 1 ms later, not "no deadline".
        assert_eq!(Deadline::at(Instant(0)).get(), Some(Instant(1)));
        assert!(!Deadline::at(Instant(0)).is_none());
    }
}
