//! The random task selection of llama-perplexity, reproduced so that `--tasks N` picks the
//! same tasks: C++'s `std::mt19937` seeded with 1, and the two ways the tool draws from it.

/// The 32-bit Mersenne Twister, as `std::mt19937` (seeding and output).
#[derive(Debug, Clone)]
pub struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    /// The generator `std::mt19937 rng(seed)` creates.
    pub fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// The next output, as `rng()`.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `std::uniform_int_distribution<size_t>(0, n - 1)(rng)` as GNU libstdc++ 11 and later
    /// compute it for a 32-bit generator (Lemire's multiply-and-reject). `n` must be in
    /// `1..=2^32`.
    pub fn uniform_below(&mut self, n: u64) -> u64 {
        assert!(
            (1..=1 << 32).contains(&n),
            "range out of the 32-bit generator's reach"
        );
        if n == 1 << 32 {
            return u64::from(self.next_u32());
        }
        let range = n as u32;
        let mut product = u64::from(self.next_u32()) * u64::from(range);
        let mut low = product as u32;
        if low < range {
            let threshold = range.wrapping_neg() % range;
            while low < threshold {
                product = u64::from(self.next_u32()) * u64::from(range);
                low = product as u32;
            }
        }
        product >> 32
    }

    /// `int(scale * rng() * len)` with `scale = 1/(1 + 2^32 - 1)` in single precision, the
    /// index llama-perplexity draws for Winogrande and multiple-choice task selection.
    pub fn scaled_index(&mut self, len: usize) -> usize {
        let scale = 1.0f32 / (1.0f32 + u32::MAX as f32);
        let r = self.next_u32() as f32;
        ((scale * r) * len as f32) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by a C++17 program built with g++ 12 / libstdc++:
    // `std::mt19937 rng(1)` outputs, `uniform_int_distribution<size_t>(0, n-1-k)` draws and
    // `int(scale*rng()*sz)` draws.
    #[test]
    fn matches_libstdcxx() {
        let mut a = Mt19937::new(1);
        let outs: Vec<u32> = (0..5).map(|_| a.next_u32()).collect();
        assert_eq!(
            outs,
            [1791095845, 4282876139, 3093770124, 4005303368, 491263]
        );
        let mut r = Mt19937::new(1);
        let draws: Vec<u64> = (0..6).map(|k| r.uniform_below(10 - k)).collect();
        assert_eq!(draws, [4, 8, 5, 6, 0, 0]);
        let mut r = Mt19937::new(1);
        let draws: Vec<u64> = (0..6).map(|k| r.uniform_below(3_000_000_001 - k)).collect();
        assert_eq!(
            draws,
            [1251065995, 2991554424, 2797672082, 906997702, 277015786, 1189742176]
        );
        let mut r = Mt19937::new(1);
        let draws: Vec<usize> = (0..5).map(|k| r.scaled_index(7 - k)).collect();
        assert_eq!(draws, [2, 5, 3, 3, 0]);
    }
}
