//! The colony's pseudo-random numbers: splitmix64 (Steele, Lea and Flood, 2014), seeded,
//! never from the OS, so that every placement, generated topology and simulation is a
//! function of its seed.
//!
//! It is the same generator as `physalia_impl::rng` (the reference sequence below is the
//! one pinned there); the colony cannot link `impl` (the crate graph runs the other way).

/// A seeded splitmix64 stream.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A stream for one purpose (`salt`) of a seed: independent-looking streams for the
    /// parts of one run without threading one stream through all of them.
    pub fn derived(seed: u64, salt: u64) -> Self {
        let mut s = seed ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        Rng(splitmix64(&mut s))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift (bias below 2^-32 for our sizes).
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A float uniform in the open interval (0, 1).
    pub fn unit_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// An exponentially distributed duration with the given rate (events per unit time).
    pub fn exponential(&mut self, rate: f64) -> f64 {
        -self.unit_open().ln() / rate
    }
}

/// Advances `state` and returns the next 64 random bits.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit mix of a few numbers (tie-breaks that must not depend on iteration
/// order).
pub fn mix(parts: &[u64]) -> u64 {
    let mut s = 0x243F_6A88_85A3_08D3u64;
    for &p in parts {
        s ^= p;
        s = splitmix64(&mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_stays_in_range_and_unit_is_open() {
        let mut r = Rng::new(7);
        for n in 1..50 {
            assert!(r.below(n) < n);
            let u = r.unit_open();
            assert!(u > 0.0 && u < 1.0);
        }
    }
}
