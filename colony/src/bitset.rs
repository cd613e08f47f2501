//! A fixed-size bitset over cells or nodes, for the checker's unions.

/// A set of indices below a fixed bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    /// The empty set over `0..len`.
    pub fn new(len: usize) -> Self {
        Bitset {
            words: vec![0; len.div_ceil(64)],
        }
    }

    /// The set of `indices` (each below `len`).
    pub fn from_indices(len: usize, indices: &[usize]) -> Self {
        let mut b = Self::new(len);
        for &i in indices {
            b.set(i);
        }
        b
    }

    /// Adds `i`.
    pub fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Whether `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// The number of elements.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// `self = a \ b`.
    pub fn assign_and_not(&mut self, a: &Bitset, b: &Bitset) {
        for ((w, x), y) in self.words.iter_mut().zip(&a.words).zip(&b.words) {
            *w = x & !y;
        }
    }

    /// `self |= a \ b`.
    pub fn or_and_not(&mut self, a: &Bitset, b: &Bitset) {
        for ((w, x), y) in self.words.iter_mut().zip(&a.words).zip(&b.words) {
            *w |= x & !y;
        }
    }

    /// `self |= a`.
    pub fn or(&mut self, a: &Bitset) {
        for (w, x) in self.words.iter_mut().zip(&a.words) {
            *w |= x;
        }
    }

    /// Whether every element of `self` is in `other`.
    pub fn is_subset(&self, other: &Bitset) -> bool {
        self.words
            .iter()
            .zip(&other.words)
            .all(|(a, b)| a & !b == 0)
    }

    /// The elements, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Bitset;

    #[test]
    fn set_operations() {
        let a = Bitset::from_indices(130, &[0, 64, 129]);
        let b = Bitset::from_indices(130, &[64]);
        let mut c = Bitset::new(130);
        c.assign_and_not(&a, &b);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![0, 129]);
        assert!(c.is_subset(&a) && !a.is_subset(&c));
        c.or(&b);
        assert_eq!(c.count(), 3);
        assert!(c.contains(64) && !c.contains(63));
    }
}
