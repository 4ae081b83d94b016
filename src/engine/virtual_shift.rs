//! Test support: whole shifts of the dialer on a virtual clock, against a
//! shell that answers every effect as a carrier, a store and simulated
//! agents would — the engine's own pacers, dispatcher and 2-second
//! abandon clocks at work, for figures the single-campaign simulator
//! (`outdial simulate`) cannot give: several campaigns sharing agents.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::attempt::{AttemptResult, Failure, Verdict};
use super::dialer::Dialer;
use super::io::{CallId, Effect, Input};
use crate::sim::rng::Rng;
use crate::store::Lease;

/// What the callees of a campaign's list do.
#[derive(Debug, Clone, Copy)]
pub(super) struct Callees {
    /// Share of dials a person answers.
    pub human: f64,
    /// Share of dials a machine answers.
    pub machine: f64,
    /// Mean talk time (lognormal with a CV of 1 as in the reference grid,
    /// at least 5 s).
    pub talk_mean_s: f64,
}

/// One campaign's live answers and abandons, and its running abandonment
/// rate's highest value once `MIN_ANSWERS` live answers were seen.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally {
    pub dials: u64,
    pub live: u64,
    pub abandoned: u64,
    pub peak_rate: f64,
    /// Seconds of talk agents were given with this campaign's customers
    /// (drawn at each connection; calls still running at the end count
    /// whole).
    pub talk_s: f64,
}

const MIN_ANSWERS: u64 = 100;

pub(super) struct VirtualShift {
    pub dialer: Dialer,
    now: Instant,
    due: BTreeMap<(Instant, u64), Input>,
    seq: u64,
    rng: Rng,
    next_record: i64,
    callees: BTreeMap<String, Callees>,
    campaign_of: BTreeMap<CallId, String>,
    pub tally: BTreeMap<String, Tally>,
}

impl VirtualShift {
    pub fn new(
        dialer: Dialer,
        callees: BTreeMap<String, Callees>,
        seed: u64,
        now: Instant,
    ) -> Self {
        VirtualShift {
            dialer,
            now,
            due: BTreeMap::new(),
            seq: 0,
            rng: Rng::new(seed),
            next_record: 1,
            callees,
            campaign_of: BTreeMap::new(),
            tally: BTreeMap::new(),
        }
    }

    fn at(&mut self, after: Duration, input: Input) {
        self.seq += 1;
        self.due.insert((self.now + after, self.seq), input);
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s.max(0.0))
    }

    /// Runs the dialer until `end`: inputs at their times, its timers when
    /// due, every effect answered.
    pub fn run_until(&mut self, end: Instant) {
        self.answer_effects();
        loop {
            let next_input = self.due.first_key_value().map(|((t, _), _)| *t);
            let next_timer = self.dialer.poll_timeout();
            let next = match (next_input, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => return,
                },
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            if next_input.is_some_and(|t| t <= next) {
                if let Some((_, input)) = self.due.pop_first() {
                    self.dialer.handle_input(input, self.now);
                }
            } else {
                self.dialer.handle_timeout(self.now);
            }
            self.answer_effects();
        }
    }

    fn answer_effects(&mut self) {
        // Events are for the API's subscribers: none here.
        while self.dialer.poll_event().is_some() {}
        while let Some(effect) = self.dialer.poll_effect() {
            match effect {
                Effect::Lease {
                    campaign,
                    max,
                    for_agent,
                    ..
                } => {
                    let leases = (0..max.min(50))
                        .map(|_| {
                            let id = self.next_record;
                            self.next_record += 1;
                            lease(id)
                        })
                        .collect();
                    self.at(
                        Duration::ZERO,
                        Input::Leased {
                            campaign,
                            leases,
                            for_agent,
                        },
                    );
                }
                Effect::LoadAnswerHistory { campaign } => self.at(
                    Duration::ZERO,
                    Input::AnswerHistory {
                        campaign,
                        minutes: Vec::new(),
                        calls: Vec::new(),
                    },
                ),
                Effect::Dial { call, campaign, .. } => self.dial(call, campaign),
                Effect::CancelRinging { call } => {
                    self.forget(call);
                    self.at(
                        Duration::ZERO,
                        Input::Failed {
                            call,
                            failure: Failure::NoAnswer,
                            sip_code: Some(487),
                            retry_after: None,
                        },
                    );
                }
                Effect::HangUp { call } | Effect::CallOver { call } => self.forget(call),
                Effect::Connect { call, agent } => {
                    let talk_mean_s = self
                        .campaign_of
                        .get(&call)
                        .and_then(|c| self.callees.get(c))
                        .map_or(60.0, |c| c.talk_mean_s);
                    // Lognormal, CV 1: σ² = ln 2, μ = ln(mean) − σ²/2.
                    let sigma2 = 2f64.ln();
                    let mu = talk_mean_s.ln() - sigma2 / 2.0;
                    let talk = (mu + sigma2.sqrt() * self.rng.normal()).exp().max(5.0);
                    if let Some(campaign) = self.campaign_of.get(&call) {
                        self.tally.entry(campaign.clone()).or_default().talk_s += talk;
                    }
                    self.at(Duration::from_millis(20), Input::Spliced { call, agent });
                    self.at(Self::secs(talk), Input::RemoteHangUp { call });
                }
                Effect::Play { call, .. } => {
                    self.at(Duration::from_secs(3), Input::PromptDone { call })
                }
                Effect::Record(record) => self.count(&record),
                _ => {}
            }
        }
    }

    /// Draws what the callee of `call` does, and when.
    fn dial(&mut self, call: CallId, campaign: String) {
        let callees = self.callees.get(&campaign).copied().unwrap_or(Callees {
            human: 0.3,
            machine: 0.2,
            talk_mean_s: 60.0,
        });
        self.tally.entry(campaign.clone()).or_default().dials += 1;
        self.campaign_of.insert(call, campaign);
        let u = self.rng.uniform();
        self.at(Duration::from_millis(300), Input::Ringing { call });
        if u < callees.human {
            // A person: 2 s + Gamma(2.5, 2.8) s of ringing, a 1 s greeting.
            let ring = (2.0 + 2.8 * self.rng.gamma(2.5)).min(18.0);
            self.at(Self::secs(ring), Input::Answered { call });
            let greeting_ended = self.now + Self::secs(ring + 1.0);
            self.at(
                Self::secs(ring + 1.3),
                Input::Cpa {
                    call,
                    verdict: Verdict::Human { greeting_ended },
                    label: "human",
                    at_ms: 1300,
                },
            );
        } else if u < callees.human + callees.machine {
            let ring = (12.0 + 1.5 * self.rng.gamma(4.0)).min(18.0);
            self.at(Self::secs(ring), Input::Answered { call });
            self.at(
                Self::secs(ring + 3.0),
                Input::Cpa {
                    call,
                    verdict: Verdict::Machine,
                    label: "machine",
                    at_ms: 3000,
                },
            );
        } else if u < callees.human + callees.machine + 0.15 {
            let ring = 1.0 + 5.0 * self.rng.uniform();
            self.at(
                Self::secs(ring),
                Input::Failed {
                    call,
                    failure: Failure::Busy,
                    sip_code: Some(486),
                    retry_after: None,
                },
            );
        }
        // Else nobody answers: the dialer's ring timeout cancels it.
    }

    /// The call ended (or stopped ringing): what its callee was still to
    /// do does not happen.
    fn forget(&mut self, call: CallId) {
        self.due.retain(|_, input| call_of(input) != Some(call));
    }

    fn count(&mut self, record: &super::io::AttemptRecord) {
        let call = record.call;
        let Some(campaign) = self.campaign_of.get(&call).cloned() else {
            return;
        };
        let tally = self.tally.entry(campaign).or_default();
        match record.outcome.result {
            AttemptResult::Connected => tally.live += 1,
            AttemptResult::Abandoned => {
                tally.live += 1;
                tally.abandoned += 1;
                if tally.live >= MIN_ANSWERS {
                    let rate = tally.abandoned as f64 / tally.live as f64;
                    tally.peak_rate = tally.peak_rate.max(rate);
                }
            }
            _ => {}
        }
    }
}

/// `count` simulated agents (no phone: Ready from the start) named `s0`,
/// `s1`, … in `campaigns`, each wrap-up lasting `wrap_up_s`, as
/// configuration.
pub(super) fn simulated_agents(count: usize, campaigns: &[&str], wrap_up_s: u32) -> String {
    let campaigns = campaigns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    (0..count)
        .map(|i| {
            format!(
                r#"
[[agent]]
id = "s{i}"
name = "Simulated {i}"
campaigns = [{campaigns}]
simulated = {{ wrap_up_s = {wrap_up_s}, disposition = "SALE" }}
"#
            )
        })
        .collect()
}

fn call_of(input: &Input) -> Option<CallId> {
    match input {
        Input::Ringing { call }
        | Input::Answered { call }
        | Input::Failed { call, .. }
        | Input::RemoteHangUp { call }
        | Input::Cpa { call, .. }
        | Input::Spliced { call, .. }
        | Input::PromptDone { call } => Some(*call),
        _ => None,
    }
}

fn lease(id: i64) -> Lease {
    Lease {
        record_id: id,
        campaign: 1,
        external_id: format!("r{id}"),
        name: String::new(),
        custom_json: "{}".into(),
        time_zones: "America/New_York".into(),
        priority: 0,
        phone: format!("+1202555{:04}", id % 10_000),
        attempts: 0,
        callback: None,
        callback_agent: None,
        node: "test".into(),
        lease_until: jiff::Timestamp::UNIX_EPOCH,
        agent_required: false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::engine::campaign_run::RunCommand;
    use crate::engine::dialer::Command;

    /// One predictive campaign of `agents` simulated agents through the
    /// engine: its tally and the agents' talk share of the shift.
    pub(crate) fn one_campaign_shift(
        agents: usize,
        human: f64,
        seed: u64,
        hours: f64,
    ) -> (Tally, f64) {
        let roster = simulated_agents(agents, &["demo"], 10);
        let text = format!(
            r#"{node}
[[campaign]]
name = "demo"
mode = "predictive"
ring_timeout_s = 20
{roster}"#,
            node = crate::engine::test_node_toml(3 * agents as u32, 10.0),
        );
        let config = Config::parse(&text, Path::new("outdial.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let t0 = Instant::now();
        let mut dialer = Dialer::new(&config, t0);
        dialer
            .handle_command(
                Command::Campaign {
                    name: "demo".into(),
                    command: RunCommand::Start,
                },
                t0,
            )
            .unwrap();
        let callees = [(
            "demo".to_string(),
            Callees {
                human,
                machine: 0.2,
                talk_mean_s: 120.0,
            },
        )]
        .into_iter()
        .collect();
        let mut shift = VirtualShift::new(dialer, callees, seed, t0);
        shift.run_until(t0 + Duration::from_secs_f64(hours * 3600.0));
        let tally = shift.tally.get("demo").copied().unwrap_or_default();
        let talk = tally.talk_s / (agents as f64 * hours * 3600.0);
        (tally, talk)
    }

    #[test]
    #[ignore]
    fn engine_against_the_simulator_figures() {
        for (agents, human) in [(5, 0.3), (20, 0.1), (20, 0.3), (20, 0.6)] {
            for seed in 1..=3 {
                let (t, talk) = one_campaign_shift(agents, human, seed, 8.0);
                eprintln!(
                    "N {agents} p_h {human} seed {seed}: talk {:.1} %, {} dials, {} live, abandoned {:.2} %, peak {:.2} %",
                    100.0 * talk,
                    t.dials,
                    t.live,
                    100.0 * t.abandoned as f64 / t.live.max(1) as f64,
                    100.0 * t.peak_rate
                );
            }
        }
    }
}
