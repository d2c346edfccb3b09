//! Hybrid logical clocks: wall-clock milliseconds in the high 48 bits, a
//! counter in the low 16. An edit made after seeing another always carries a
//! larger stamp, even when the tablet's clock is behind.

use serde::{Deserialize, Serialize};

/// A hybrid logical clock reading.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc(pub u64);

const COUNTER_BITS: u32 = 16;

impl Hlc {
    /// The reading for a wall-clock time with a zero counter.
    pub fn from_millis(ms: u64) -> Self {
        Hlc(ms << COUNTER_BITS)
    }

    /// The wall-clock part, milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> COUNTER_BITS
    }

    /// The next reading after `self` given the wall clock `now_ms`.
    pub fn tick(self, now_ms: u64) -> Self {
        Hlc(self.0.saturating_add(1).max(Self::from_millis(now_ms).0))
    }

    /// Moves past a reading seen from elsewhere (a pulled change, a server reply).
    pub fn observe(self, seen: Hlc) -> Self {
        self.max(seen)
    }

    /// `self`, unless it is further than `max_skew_ms` ahead of `now_ms`, in which
    /// case the bound. Keeps a tablet with a clock set years ahead from winning
    /// every conflict forever.
    pub fn bounded(self, now_ms: u64, max_skew_ms: u64) -> Self {
        self.min(Self::from_millis(now_ms.saturating_add(max_skew_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_forward_even_when_the_wall_clock_goes_back() {
        let a = Hlc::default().tick(1_000);
        let b = a.tick(500);
        assert!(b > a);
        assert_eq!(b.millis(), 1_000);
        let c = b.tick(2_000);
        assert_eq!(c, Hlc::from_millis(2_000));
    }

    #[test]
    fn bounds_clocks_from_the_future() {
        let far = Hlc::from_millis(10_000_000);
        assert_eq!(far.bounded(1_000, 500), Hlc::from_millis(1_500));
        let near = Hlc::from_millis(1_200);
        assert_eq!(near.bounded(1_000, 500), near);
    }
}
