//! A campaign's dialing rules (window, attempt limits, retry delays) and
//! what happens to a record after each attempt.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::model::{DispositionEffect, Outcome, RecordState};
use super::window::{CallingWindow, WindowError};
use crate::config::CampaignConfig;

/// Delay before a record is dialed again, per outcome, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryDelays {
    pub busy_s: u64,
    pub no_answer_s: u64,
    pub machine_s: u64,
    pub congestion_s: u64,
    pub network_failure_s: u64,
    /// After an abandoned live answer (`no_answer_s` until session 24;
    /// rules stored before read the default, and are written again from
    /// the configuration at every start).
    #[serde(default = "abandoned_s_before_it_was_set")]
    pub abandoned_s: u64,
}

fn abandoned_s_before_it_was_set() -> u64 {
    RetryDelays::default().no_answer_s
}

impl Default for RetryDelays {
    fn default() -> Self {
        RetryDelays {
            busy_s: 300,
            no_answer_s: 1800,
            machine_s: 7200,
            congestion_s: 300,
            network_failure_s: 300,
            abandoned_s: 1800,
        }
    }
}

/// Ofcom's repeat-call rule (UK, `[campaign.repeat_calls]`): a number
/// called again within 72 hours of an abandoned call, or within 24 hours of
/// a call the answering-machine detection took for a machine (which may have
/// been a person hung up on), may be called only with a live agent
/// guaranteed. The store marks the number for this long after such a call;
/// the engine then dials it only with an agent reserved from the dial and
/// connects that agent at the answer. 0 (the default) marks nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatCalls {
    /// After a live answer no agent took in time (Ofcom: 259200, 72 h).
    #[serde(default)]
    pub agent_after_abandoned_s: u64,
    /// After a machine verdict (Ofcom: 86400, 24 h).
    #[serde(default)]
    pub agent_after_machine_s: u64,
}

impl RepeatCalls {
    /// How long after a call that ended so the number needs a guaranteed
    /// agent, if at all: `abandoned` also covers a live answer still
    /// waiting when the dialer stopped (outcome `interrupted`); a machine
    /// an agent took (`machine_action = "connect_agent"`) marks nothing —
    /// had it been a person, they were not hung up on.
    pub fn agent_required_for(
        &self,
        outcome: Outcome,
        abandoned: bool,
        agent_took_it: bool,
    ) -> Option<SignedDuration> {
        let seconds = if abandoned || outcome == Outcome::Abandoned {
            self.agent_after_abandoned_s
        } else if outcome == Outcome::Machine && !agent_took_it {
            self.agent_after_machine_s
        } else {
            0
        };
        (seconds > 0)
            .then(|| SignedDuration::from_secs(i64::try_from(seconds).unwrap_or(i64::MAX / 2)))
    }
}

/// Everything the hopper and the retry logic need to know about a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRules {
    pub name: String,
    pub window: CallingWindow,
    /// ISO 3166 region for numbers written without a country code.
    pub default_region: String,
    /// Dials per record before it is exhausted.
    pub max_attempts: u32,
    /// Dials per phone number of a record before that number is skipped.
    pub max_attempts_per_number: u32,
    /// Dials per record in one day of the contact's local time (None: no
    /// daily limit). Absent in rules stored before the limit existed.
    #[serde(default)]
    pub max_attempts_per_day: Option<u32>,
    pub retry: RetryDelays,
    /// The campaign's own dispositions (the system ones are the store's),
    /// written with the rules. Absent in rules stored before they existed.
    #[serde(default)]
    pub dispositions: Vec<super::model::Disposition>,
    /// Absent in rules stored before the repeat-call rule existed: off.
    #[serde(default)]
    pub repeat_calls: RepeatCalls,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("campaign `{campaign}`: {source}")]
    Window {
        campaign: String,
        source: WindowError,
    },
}

impl CampaignRules {
    /// Rules with the documented defaults, for tests and tools.
    pub fn with_defaults(name: &str) -> CampaignRules {
        CampaignRules {
            name: name.to_string(),
            window: CallingWindow::default(),
            default_region: "US".into(),
            max_attempts: 5,
            max_attempts_per_number: 3,
            max_attempts_per_day: None,
            retry: RetryDelays::default(),
            dispositions: Vec::new(),
            repeat_calls: RepeatCalls::default(),
        }
    }

    pub fn from_config(config: &CampaignConfig) -> Result<CampaignRules, RulesError> {
        let window =
            CallingWindow::parse(&config.call_hours, &config.call_days).map_err(|source| {
                RulesError::Window {
                    campaign: config.name.clone(),
                    source,
                }
            })?;
        Ok(CampaignRules {
            name: config.name.clone(),
            window,
            default_region: config.default_region.clone(),
            max_attempts: config.max_attempts,
            max_attempts_per_number: config.max_attempts_per_number,
            max_attempts_per_day: config.max_attempts_per_day,
            retry: RetryDelays {
                busy_s: config.retry.busy_s,
                no_answer_s: config.retry.no_answer_s,
                machine_s: config.retry.machine_s,
                congestion_s: config.retry.congestion_s,
                network_failure_s: config.retry.network_failure_s,
                abandoned_s: config.retry.abandoned_s.unwrap_or(config.retry.no_answer_s),
            },
            dispositions: config
                .dispositions
                .iter()
                .map(|d| super::model::Disposition {
                    code: d.code.clone(),
                    label: d.label.clone(),
                    effect: d.effect,
                })
                .collect(),
            repeat_calls: config.repeat_calls,
        })
    }

    /// The retry delay after `outcome`.
    pub fn retry_delay(&self, outcome: Outcome) -> SignedDuration {
        let seconds = match outcome {
            Outcome::Busy => self.retry.busy_s,
            Outcome::NoAnswer | Outcome::Declined | Outcome::Human => self.retry.no_answer_s,
            Outcome::Abandoned => self.retry.abandoned_s,
            Outcome::Machine => self.retry.machine_s,
            Outcome::Congestion => self.retry.congestion_s,
            Outcome::NetworkFailure | Outcome::TrunkRefused | Outcome::Interrupted => {
                self.retry.network_failure_s
            }
            // The number is dead; the next number of the chain may go now.
            Outcome::Sit | Outcome::InvalidNumber | Outcome::Fax => 0,
        };
        SignedDuration::from_secs(i64::try_from(seconds).unwrap_or(i64::MAX / 2))
    }
}

/// What the store does to a record after an attempt completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    pub state: RecordState,
    /// When the record is next eligible (meaningful for `Retry`).
    pub next_at: Timestamp,
    /// The dialed number must never be dialed again (SIT, invalid, fax).
    pub number_dead: bool,
    /// The dialed number goes on the campaign's DNC list.
    pub add_dnc: bool,
}

/// The record's next state after one attempt: `attempts` counts this one;
/// `usable_numbers_left` is how many of the record's numbers may still be
/// dialed once this attempt's effect on its number is applied.
pub fn after_attempt(
    rules: &CampaignRules,
    outcome: Outcome,
    disposition: Option<DispositionEffect>,
    attempts: u32,
    usable_numbers_left: u32,
    now: Timestamp,
) -> NextStep {
    let number_dead = outcome.kills_number();
    let mut step = NextStep {
        state: RecordState::Retry,
        next_at: now.checked_add(rules.retry_delay(outcome)).unwrap_or(now),
        number_dead,
        add_dnc: false,
    };
    match disposition {
        Some(DispositionEffect::DoNotCall) => {
            step.state = RecordState::Removed;
            step.add_dnc = true;
            return step;
        }
        Some(DispositionEffect::Final) => {
            step.state = RecordState::Done;
            return step;
        }
        Some(DispositionEffect::Retry) => {}
        // The number is dead (the store marked it before counting the
        // usable ones): the record goes on with its other numbers.
        Some(DispositionEffect::DeadNumber) => step.number_dead = true,
        // A live person with no disposition: the conversation happened.
        None if outcome == Outcome::Human => {
            step.state = RecordState::Done;
            return step;
        }
        None => {}
    }
    if attempts >= rules.max_attempts || usable_numbers_left == 0 {
        step.state = RecordState::Exhausted;
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-07-15T15:00:00Z".parse().unwrap()
    }

    #[test]
    fn busy_retries_after_the_busy_delay() {
        let rules = CampaignRules::with_defaults("c");
        let step = after_attempt(&rules, Outcome::Busy, None, 1, 1, now());
        assert_eq!(step.state, RecordState::Retry);
        assert_eq!(step.next_at.duration_since(now()).as_secs(), 300);
        assert!(!step.number_dead);
    }

    #[test]
    fn the_last_attempt_exhausts_the_record() {
        let rules = CampaignRules::with_defaults("c");
        let step = after_attempt(&rules, Outcome::NoAnswer, None, 5, 1, now());
        assert_eq!(step.state, RecordState::Exhausted);
    }

    #[test]
    fn sit_kills_the_number_and_a_dead_chain_exhausts() {
        let rules = CampaignRules::with_defaults("c");
        let step = after_attempt(&rules, Outcome::Sit, None, 1, 0, now());
        assert!(step.number_dead);
        assert_eq!(step.state, RecordState::Exhausted);
        let step = after_attempt(&rules, Outcome::Sit, None, 1, 1, now());
        assert_eq!(step.state, RecordState::Retry);
        assert_eq!(step.next_at, now());
    }

    #[test]
    fn the_repeat_call_rule_marks_abandoned_and_machine_calls_only() {
        let off = RepeatCalls::default();
        assert_eq!(
            off.agent_required_for(Outcome::Abandoned, true, false),
            None
        );
        let uk = RepeatCalls {
            agent_after_abandoned_s: 259_200,
            agent_after_machine_s: 86_400,
        };
        let hours = |d: Option<SignedDuration>| d.map(|d| d.as_secs() / 3600);
        assert_eq!(
            hours(uk.agent_required_for(Outcome::Abandoned, true, false)),
            Some(72)
        );
        // A live answer waiting for an agent when the dialer stopped.
        assert_eq!(
            hours(uk.agent_required_for(Outcome::Interrupted, true, false)),
            Some(72)
        );
        assert_eq!(
            hours(uk.agent_required_for(Outcome::Machine, false, false)),
            Some(24)
        );
        // A machine an agent took and judged: nobody was hung up on.
        assert_eq!(uk.agent_required_for(Outcome::Machine, false, true), None);
        for outcome in [
            Outcome::Human,
            Outcome::NoAnswer,
            Outcome::Busy,
            Outcome::Interrupted,
            Outcome::Fax,
        ] {
            assert_eq!(
                uk.agent_required_for(outcome, false, false),
                None,
                "{outcome:?}"
            );
        }
        let machines_only = RepeatCalls {
            agent_after_abandoned_s: 0,
            agent_after_machine_s: 86_400,
        };
        assert_eq!(
            machines_only.agent_required_for(Outcome::Abandoned, true, false),
            None
        );
    }

    #[test]
    fn dispositions_decide_for_live_answers() {
        let rules = CampaignRules::with_defaults("c");
        let dnc = after_attempt(
            &rules,
            Outcome::Human,
            Some(DispositionEffect::DoNotCall),
            1,
            1,
            now(),
        );
        assert_eq!((dnc.state, dnc.add_dnc), (RecordState::Removed, true));
        let sale = after_attempt(
            &rules,
            Outcome::Human,
            Some(DispositionEffect::Final),
            1,
            1,
            now(),
        );
        assert_eq!(sale.state, RecordState::Done);
        let plain = after_attempt(&rules, Outcome::Human, None, 1, 1, now());
        assert_eq!(plain.state, RecordState::Done);
        // "Invalid number" by an agent: that number is dead, the record
        // goes on with another, or is exhausted without one.
        let wrong = |usable| {
            after_attempt(
                &rules,
                Outcome::Human,
                Some(DispositionEffect::DeadNumber),
                1,
                usable,
                now(),
            )
        };
        assert_eq!(
            (wrong(1).state, wrong(1).number_dead),
            (RecordState::Retry, true)
        );
        assert_eq!(wrong(0).state, RecordState::Exhausted);
    }
}
