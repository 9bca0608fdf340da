//! Time as the firmware sees it: a millisecond clock passed in by the caller.
//!
//! Every layer takes `now` as an argument (as smoltcp does) rather than reading a clock:
//! on the target it comes from CP0 Count, on the simulated board from the virtual clock,
//! so a 30 s idle timeout can be tested in milliseconds of real time. Instants wrap after
//! 2^32 ms (49.7 days); intervals are compared with wrapping arithmetic and must stay
//! below 2^31 ms.

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
}
