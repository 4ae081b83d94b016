//! Online estimators the pacer learns from what it observes: when a dialed
//! call resolves and whether it is a live answer (by the call's age), and how
//! long agents talk and wrap up.
//!
//! Both forget slowly (exponential weights or a ring of recent samples) so a
//! list whose hit rate wears down, or a change in talk times, is followed
//! within a few hundred calls.

use std::collections::VecDeque;

/// Resolution of the call-age axis.
pub const AGE_BIN_S: f64 = 0.5;
/// Ages tracked: 0 to 64 s; an older call sits in the last bin.
pub const AGE_BINS: usize = 128;
/// Prediction horizon in bins (30 s: covers a human's ring time).
pub const HORIZON_BINS: usize = 60;
/// Weight of a duration model's prior, in samples.
const PRIOR_SAMPLES: f64 = 20.0;
/// Observations after which an estimator's lookup table is rebuilt.
const REBUILD_EVERY: u32 = 32;

/// How dialed calls resolve, by age: live answer (greeting done) or anything
/// else (machine, busy, no answer, failure).
#[derive(Debug, Clone)]
pub struct OutcomeModel {
    human: Vec<f64>,
    all: Vec<f64>,
    unit: f64,
    decay: f64,
    dirty: u32,
    observations: u64,
    /// `live[a * (HORIZON_BINS + 1) + j]`: probability that a call still
    /// unresolved at age bin `a` becomes a live answer within `j` bins.
    live: Vec<f64>,
}

impl OutcomeModel {
    /// `memory`: the number of recent resolutions that carry most weight.
    pub fn new(memory: f64) -> Self {
        let mut model = Self {
            human: vec![0.0; AGE_BINS],
            all: vec![0.0; AGE_BINS],
            unit: 1.0,
            decay: 1.0 - 1.0 / memory.max(2.0),
            dirty: 0,
            observations: 0,
            live: vec![0.0; AGE_BINS * (HORIZON_BINS + 1)],
        };
        model.rebuild();
        model
    }

    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// A call resolved `ring_s` after it was dialed; `live` when a person answered.
    pub fn observe(&mut self, ring_s: f64, live: bool) {
        let bin = age_bin(ring_s);
        self.all[bin] += self.unit;
        if live {
            self.human[bin] += self.unit;
        }
        self.unit /= self.decay;
        if self.unit > 1e100 {
            for w in self.all.iter_mut().chain(self.human.iter_mut()) {
                *w /= self.unit;
            }
            self.unit = 1.0;
        }
        self.observations += 1;
        self.dirty += 1;
        if self.dirty >= REBUILD_EVERY {
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        self.dirty = 0;
        // Cumulative live answers below each bin; calls resolving at or after each bin.
        let mut cum_human = vec![0.0; AGE_BINS + 1];
        for b in 0..AGE_BINS {
            cum_human[b + 1] = cum_human[b] + self.human[b];
        }
        let mut surviving = vec![0.0; AGE_BINS + 1];
        for b in (0..AGE_BINS).rev() {
            surviving[b] = surviving[b + 1] + self.all[b];
        }
        for a in 0..AGE_BINS {
            let row = &mut self.live[a * (HORIZON_BINS + 1)..(a + 1) * (HORIZON_BINS + 1)];
            let alive = surviving[a];
            for (j, cell) in row.iter_mut().enumerate() {
                // An answer in bin b counts as arriving by the end of that bin.
                let end = (a + j).min(AGE_BINS);
                *cell = if alive > 0.0 && end > a {
                    ((cum_human[end] - cum_human[a]) / alive).clamp(0.0, 1.0)
                } else {
                    0.0
                };
            }
        }
    }

    /// Probabilities (by horizon bin) that a call of age bin `age` becomes a
    /// live answer within that many bins.
    pub fn live_curve(&self, age: usize) -> &[f64] {
        let a = age.min(AGE_BINS - 1);
        &self.live[a * (HORIZON_BINS + 1)..(a + 1) * (HORIZON_BINS + 1)]
    }

    /// Fraction of recent dials that were live answers.
    pub fn live_rate(&self) -> f64 {
        let all: f64 = self.all.iter().sum();
        if all > 0.0 {
            self.human.iter().sum::<f64>() / all
        } else {
            0.0
        }
    }
}

pub fn age_bin(age_s: f64) -> usize {
    if age_s.is_finite() && age_s > 0.0 {
        ((age_s / AGE_BIN_S) as usize).min(AGE_BINS - 1)
    } else {
        0
    }
}

/// Distribution of one duration (talk or wrap-up) from recent samples, as a
/// cumulative table at a fixed resolution.
#[derive(Debug, Clone)]
pub struct DurationModel {
    samples: VecDeque<f64>,
    capacity: usize,
    resolution_s: f64,
    bins: usize,
    prior_mean_s: f64,
    /// Running durations at the last rebuild (censored samples).
    censored: Vec<f64>,
    dirty: u32,
    /// `cdf[i]` = P(duration ≤ i · resolution).
    cdf: Vec<f64>,
    mean_s: f64,
}

impl DurationModel {
    pub fn new(capacity: usize, resolution_s: f64, max_s: f64, prior_mean_s: f64) -> Self {
        let bins = (max_s / resolution_s).ceil() as usize + 1;
        let mut model = Self {
            samples: VecDeque::with_capacity(capacity),
            capacity,
            resolution_s,
            bins,
            prior_mean_s,
            censored: Vec::new(),
            dirty: 0,
            cdf: vec![0.0; bins],
            mean_s: prior_mean_s,
        };
        model.rebuild();
        model
    }

    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    pub fn mean_s(&self) -> f64 {
        self.mean_s
    }

    pub fn observe(&mut self, duration_s: f64) {
        self.observe_censored(duration_s, std::iter::empty());
    }

    /// One duration completed while others are still running for the
    /// `running` times so far. Those are censored samples: without them the
    /// short durations, which complete first, would make the distribution
    /// look shorter than it is (all agents start together at login).
    pub fn observe_censored(&mut self, duration_s: f64, running: impl Iterator<Item = f64>) {
        if !duration_s.is_finite() || duration_s < 0.0 {
            return;
        }
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(duration_s);
        self.dirty += 1;
        if self.dirty >= REBUILD_EVERY || self.samples.len() <= 64 {
            self.censored.clear();
            self.censored
                .extend(running.filter(|r| r.is_finite() && *r >= 0.0));
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        self.dirty = 0;
        if self.samples.is_empty() {
            // Prior: exponential with the prior mean.
            for (i, c) in self.cdf.iter_mut().enumerate() {
                *c = 1.0 - (-(i as f64) * self.resolution_s / self.prior_mean_s).exp();
            }
            self.mean_s = self.prior_mean_s;
            return;
        }
        // Kaplan–Meier over the completed samples and the censored running
        // ones, on the grid: deaths at each grid point, and what is still at
        // risk there.
        let mut deaths = vec![0.0; self.bins];
        let mut leaving = vec![0.0; self.bins];
        for &s in &self.samples {
            // A sample counts from the next grid point up (P(D ≤ x) at grid x).
            let i = ((s / self.resolution_s).ceil() as usize).min(self.bins - 1);
            deaths[i] += 1.0;
        }
        for &c in &self.censored {
            // Known to last beyond c: at risk up to the grid point at or below it.
            let i = ((c / self.resolution_s).floor() as usize).min(self.bins - 1);
            leaving[i] += 1.0;
        }
        let mut at_risk: f64 = deaths.iter().sum::<f64>() + leaving.iter().sum::<f64>();
        let mut survival = 1.0;
        let mut km = vec![0.0; self.bins];
        for i in 0..self.bins {
            if at_risk > 0.0 && deaths[i] > 0.0 {
                survival *= 1.0 - deaths[i] / at_risk;
            }
            km[i] = 1.0 - survival;
            at_risk -= deaths[i] + leaving[i];
        }
        // The prior stays in as PRIOR_SAMPLES pseudo-samples; beyond the
        // longest sample it carries the tail.
        let n = self.samples.len() as f64;
        let weight = n + PRIOR_SAMPLES;
        let mut mean = 0.0;
        let mut previous = 0.0;
        for (i, (c, k)) in self.cdf.iter_mut().zip(&km).enumerate() {
            let prior = 1.0 - (-(i as f64) * self.resolution_s / self.prior_mean_s).exp();
            *c = (n * k + PRIOR_SAMPLES * prior) / weight;
            mean += (1.0 - previous) * self.resolution_s;
            previous = *c;
        }
        // Past the table: the remaining mass at the prior's mean.
        mean += (1.0 - previous) * self.prior_mean_s;
        self.mean_s = mean;
    }

    /// P(D ≤ x).
    pub fn cdf(&self, x_s: f64) -> f64 {
        if x_s < 0.0 {
            return 0.0;
        }
        let i = (x_s / self.resolution_s) as usize;
        match self.cdf.get(i) {
            Some(&c) => c,
            None => 1.0,
        }
    }

    /// P(D ≤ elapsed + t | D > elapsed) for `t` ≥ 0; when the samples say
    /// nobody lasts this long, an exponential tail with the mean.
    pub fn finish_within(&self, elapsed_s: f64, t_s: f64) -> f64 {
        let base = self.cdf(elapsed_s);
        let alive = 1.0 - base;
        if alive < 1e-3 {
            return 1.0 - (-t_s.max(0.0) / self.mean_s.max(1.0)).exp();
        }
        ((self.cdf(elapsed_s + t_s) - base) / alive).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_model_learns_live_rate_and_timing() {
        let mut model = OutcomeModel::new(10_000.0);
        for i in 0..1000 {
            // 30 % live answers at 5 s, the rest released at 20 s.
            if i % 10 < 3 {
                model.observe(5.0, true);
            } else {
                model.observe(20.0, false);
            }
        }
        assert!((model.live_rate() - 0.3).abs() < 0.01);
        let fresh = model.live_curve(0);
        assert!((fresh[HORIZON_BINS] - 0.3).abs() < 0.01);
        assert!(fresh[5] < 1e-9, "nothing answers before 5 s");
        // A call still unresolved at 6 s will not be a live answer.
        assert!(model.live_curve(age_bin(6.0))[HORIZON_BINS] < 1e-9);
    }

    #[test]
    fn duration_model_conditions_on_elapsed_time() {
        let mut model = DurationModel::new(2000, 1.0, 600.0, 100.0);
        for i in 0..1024 {
            model.observe(if i % 2 == 0 { 10.0 } else { 100.0 });
        }
        // The prior's 20 pseudo-samples are 2 % of the weight here.
        assert!((model.mean_s() - 55.0).abs() < 2.0);
        assert!((model.finish_within(0.0, 10.0) - 0.5).abs() < 0.02);
        assert!(model.finish_within(20.0, 80.0) > 0.95);
        assert!(model.finish_within(20.0, 50.0) < 0.03);
    }

    #[test]
    fn duration_model_counts_running_durations_as_censored() {
        let mut naive = DurationModel::new(1000, 1.0, 600.0, 100.0);
        let mut censored = DurationModel::new(1000, 1.0, 600.0, 100.0);
        // 200 short calls completed while 200 others have run 200 s already.
        for _ in 0..200 {
            naive.observe(10.0);
            censored.observe_censored(10.0, std::iter::repeat_n(200.0, 200));
        }
        // Without the running ones, nearly everything ends by 50 s.
        assert!(naive.cdf(50.0) > 0.9);
        // With them, half the mass (by Kaplan–Meier) lasts beyond 200 s.
        assert!(censored.cdf(50.0) < 0.6);
        assert!(censored.mean_s() > naive.mean_s() + 30.0);
    }
}
