//! Retransmission timeout (RFC 6298): SRTT/RTTVAR from one timed segment at a time,
//! Karn's rule (no samples from retransmitted data), exponential back-off.

/// The RTO estimator of one connection, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtt {
    /// Smoothed RTT × 8.
    srtt8: u32,
    /// RTT variance × 4.
    rttvar4: u32,
    /// Current RTO, back-off included.
    rto: u32,
    /// Whether a measurement has been taken.
    measured: bool,
}

/// Bounds and the initial value of the RTO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtoConfig {
    /// Initial RTO before any measurement (RFC 6298 §2.1: 1 s).
    pub initial_ms: u32,
    /// Lower bound. RFC 6298 §2.4 recommends 1 s; on a LAN a server wants much less.
    pub min_ms: u32,
    /// Upper bound (§2.5: at least 60 s).
    pub max_ms: u32,
}

impl Default for RtoConfig {
    fn default() -> Self {
        RtoConfig {
            initial_ms: 1000,
            min_ms: 200,
            max_ms: 60_000,
        }
    }
}

impl Rtt {
    /// Before any measurement.
    pub const fn new(initial_ms: u32) -> Rtt {
        Rtt {
            srtt8: 0,
            rttvar4: 0,
            rto: initial_ms,
            measured: false,
        }
    }

    /// The current RTO.
    pub fn rto(&self) -> u32 {
        self.rto
    }

    /// A round-trip sample from a segment that was not retransmitted (§2.2–2.3, G = 1 ms).
    #[inline(always)] // one caller: ACK processing, on every ACK of new data
    pub fn sample(&mut self, r: u32, c: &RtoConfig) {
        let r = r.min(c.max_ms);
        if !self.measured {
            self.srtt8 = r * 8;
            self.rttvar4 = r * 2; // RTTVAR = R/2
            self.measured = true;
        } else {
            // RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|; SRTT = 7/8 SRTT + 1/8 R.
            let srtt = self.srtt8 / 8;
            let err = srtt.abs_diff(r);
            self.rttvar4 = self.rttvar4 - self.rttvar4 / 4 + err;
            self.srtt8 = self.srtt8 - self.srtt8 / 8 + r;
        }
        let rto = self.srtt8 / 8 + (self.rttvar4).max(1);
        // Not `clamp`, which asserts min <= max: a bad configuration must not panic.
        self.rto = rto.max(c.min_ms).min(c.max_ms);
    }

    /// Doubles the RTO after a timeout (§5.5).
    pub fn back_off(&mut self, c: &RtoConfig) {
        self.rto = (self.rto.saturating_mul(2)).min(c.max_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6298_first_and_later_samples() {
        let c = RtoConfig {
            initial_ms: 1000,
            min_ms: 1,
            max_ms: 60_000,
        };
        let mut r = Rtt::new(c.initial_ms);
        assert_eq!(r.rto(), 1000);
        r.sample(100, &c);
        // SRTT 100, RTTVAR 50, RTO = 100 + 4*50 = 300.
        assert_eq!(r.rto(), 300);
        r.sample(100, &c);
        // RTTVAR = 3/4*50 + 0 = 37.5, SRTT = 100: RTO = 100 + 150 = 250.
        assert_eq!(r.rto(), 250);
        r.back_off(&c);
        assert_eq!(r.rto(), 500);
        for _ in 0..20 {
            r.back_off(&c);
        }
        assert_eq!(r.rto(), 60_000);
    }

    #[test]
    fn minimum_applies() {
        let c = RtoConfig::default();
        let mut r = Rtt::new(c.initial_ms);
        r.sample(0, &c);
        assert_eq!(r.rto(), 200);
    }
}
