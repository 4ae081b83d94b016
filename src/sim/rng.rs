//! A small deterministic random source (xoshiro256++ seeded by splitmix64)
//! and the distributions the scenarios use. Kept in-tree so a seed gives the
//! same campaign on every platform and crate version.

use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut state = seed;
        Self {
            s: [
                splitmix(&mut state),
                splitmix(&mut state),
                splitmix(&mut state),
                splitmix(&mut state),
            ],
        }
    }

    /// An independent stream for item `index` of the stream `seed`: the i-th
    /// dial draws the same numbers whichever policy dials it.
    pub fn for_item(seed: u64, index: u64) -> Self {
        let mut state = seed ^ 0xA076_1D64_78BD_642F;
        let a = splitmix(&mut state);
        Self::new(a ^ index.wrapping_mul(0xE703_7ED1_A0B4_28DB))
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3]))
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Gamma(shape, 1) by Marsaglia–Tsang.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = 1.0 - self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

/// A duration distribution in seconds, as written in a scenario file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Dist {
    Fixed {
        value: f64,
    },
    Uniform {
        min: f64,
        max: f64,
    },
    /// Lognormal with this mean and coefficient of variation, clamped.
    Lognormal {
        mean: f64,
        cv: f64,
        #[serde(default)]
        min: f64,
        #[serde(default)]
        max: Option<f64>,
    },
    /// `offset` + Gamma(shape, scale), capped at `max`.
    Gamma {
        shape: f64,
        scale: f64,
        #[serde(default)]
        offset: f64,
        #[serde(default)]
        max: Option<f64>,
    },
    /// `offset` + Exponential(mean), capped at `max`.
    Exponential {
        mean: f64,
        #[serde(default)]
        offset: f64,
        #[serde(default)]
        max: Option<f64>,
    },
}

impl Dist {
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        let x = match *self {
            Dist::Fixed { value } => value,
            Dist::Uniform { min, max } => min + (max - min) * rng.uniform(),
            Dist::Lognormal { mean, cv, min, max } => {
                let sigma2 = (1.0 + cv * cv).ln();
                let mu = mean.ln() - sigma2 / 2.0;
                let x = (mu + sigma2.sqrt() * rng.normal()).exp().max(min);
                max.map_or(x, |m| x.min(m))
            }
            Dist::Gamma {
                shape,
                scale,
                offset,
                max,
            } => {
                let x = offset + scale * rng.gamma(shape);
                max.map_or(x, |m| x.min(m))
            }
            Dist::Exponential { mean, offset, max } => {
                let x = offset - mean * (1.0 - rng.uniform()).ln();
                max.map_or(x, |m| x.min(m))
            }
        };
        x.max(0.0)
    }

    /// A problem with the parameters, if any.
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        let valid = match *self {
            Dist::Fixed { value } => ok(value),
            Dist::Uniform { min, max } => ok(min) && ok(max) && min <= max,
            Dist::Lognormal { mean, cv, min, max } => {
                ok(mean) && mean > 0.0 && ok(cv) && ok(min) && max.is_none_or(|m| ok(m) && m >= min)
            }
            Dist::Gamma {
                shape,
                scale,
                offset,
                max,
            } => ok(shape) && shape > 0.0 && ok(scale) && ok(offset) && max.is_none_or(ok),
            Dist::Exponential { mean, offset, max } => {
                ok(mean) && mean > 0.0 && ok(offset) && max.is_none_or(ok)
            }
        };
        if valid {
            Ok(())
        } else {
            Err(format!(
                "bad parameters {self:?}: durations are finite, non-negative seconds; mean and shape > 0; min ≤ max"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_have_their_means() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let lognormal = Dist::Lognormal {
            mean: 120.0,
            cv: 1.0,
            min: 0.0,
            max: None,
        };
        let mean = (0..n).map(|_| lognormal.sample(&mut rng)).sum::<f64>() / n as f64;
        assert!((mean - 120.0).abs() < 2.0, "{mean}");
        let gamma = Dist::Gamma {
            shape: 2.5,
            scale: 2.8,
            offset: 2.0,
            max: None,
        };
        let mean = (0..n).map(|_| gamma.sample(&mut rng)).sum::<f64>() / n as f64;
        assert!((mean - 9.0).abs() < 0.1, "{mean}");
    }

    #[test]
    fn item_streams_are_reproducible() {
        assert_eq!(
            Rng::for_item(3, 10).next_u64(),
            Rng::for_item(3, 10).next_u64()
        );
        assert_ne!(
            Rng::for_item(3, 10).next_u64(),
            Rng::for_item(3, 11).next_u64()
        );
    }
}
