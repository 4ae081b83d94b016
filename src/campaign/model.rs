//! The record model's vocabulary: record states, phone kinds, call outcomes
//! and the system disposition codes.

use serde::{Deserialize, Serialize};

/// Where a record stands in its campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    /// Imported, never dialed.
    New,
    /// Handed to a dialer node, which may be dialing it now.
    Leased,
    /// Dialed before; eligible again at its `next_at`.
    Retry,
    /// A scheduled callback is due at its `next_at`.
    Callback,
    /// Finished with a final disposition (a sale, a refusal, …).
    Done,
    /// Never to be called again (do not call, removed by an agent).
    Removed,
    /// Out of attempts or of usable numbers.
    Exhausted,
}

impl RecordState {
    pub const ALL: [RecordState; 7] = [
        RecordState::New,
        RecordState::Leased,
        RecordState::Retry,
        RecordState::Callback,
        RecordState::Done,
        RecordState::Removed,
        RecordState::Exhausted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::New => "new",
            RecordState::Leased => "leased",
            RecordState::Retry => "retry",
            RecordState::Callback => "callback",
            RecordState::Done => "done",
            RecordState::Removed => "removed",
            RecordState::Exhausted => "exhausted",
        }
    }

    pub fn parse(text: &str) -> Option<RecordState> {
        RecordState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// States the hopper may hand out (when due).
    pub fn is_dialable(self) -> bool {
        matches!(
            self,
            RecordState::New | RecordState::Retry | RecordState::Callback
        )
    }
}

/// The kind of a contact's phone number (home, mobile, work, other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    Home,
    Mobile,
    Work,
    Other,
}

impl PhoneKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneKind::Home => "home",
            PhoneKind::Mobile => "mobile",
            PhoneKind::Work => "work",
            PhoneKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> PhoneKind {
        match text {
            "home" => PhoneKind::Home,
            "mobile" | "cell" => PhoneKind::Mobile,
            "work" => PhoneKind::Work,
            _ => PhoneKind::Other,
        }
    }
}

/// How one dial ended, as the engine saw it (SIP final response, CPA verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A live person answered (CPA said human, or the call was connected).
    Human,
    /// An answering machine or voicemail answered.
    Machine,
    /// A fax machine answered: this number is dead for voice.
    Fax,
    /// 486/600 Busy.
    Busy,
    /// Rang until the ring timeout, or 480/408.
    NoAnswer,
    /// 503 or a trunk overload: not the callee's fault.
    Congestion,
    /// The trunk was unreachable or the call failed before ringing.
    NetworkFailure,
    /// The trunk refused the call itself (403, a 401/407 challenge our
    /// credentials could not answer, 488 for our media offer): our account
    /// or configuration, not the callee.
    TrunkRefused,
    /// A special information tone (disconnected, changed): never redial the number.
    Sit,
    /// 404/410/484/604: the number does not exist.
    InvalidNumber,
    /// 603 Decline from the callee.
    Declined,
    /// A live person was answered but no agent took them in time.
    Abandoned,
    /// The dialer stopped mid-call (crash, lost lease); the real result is unknown.
    Interrupted,
}

impl Outcome {
    pub const ALL: [Outcome; 13] = [
        Outcome::Human,
        Outcome::Machine,
        Outcome::Fax,
        Outcome::Busy,
        Outcome::NoAnswer,
        Outcome::Congestion,
        Outcome::NetworkFailure,
        Outcome::TrunkRefused,
        Outcome::Sit,
        Outcome::InvalidNumber,
        Outcome::Declined,
        Outcome::Abandoned,
        Outcome::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Human => "human",
            Outcome::Machine => "machine",
            Outcome::Fax => "fax",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no_answer",
            Outcome::Congestion => "congestion",
            Outcome::NetworkFailure => "network_failure",
            Outcome::TrunkRefused => "trunk_refused",
            Outcome::Sit => "sit",
            Outcome::InvalidNumber => "invalid_number",
            Outcome::Declined => "declined",
            Outcome::Abandoned => "abandoned",
            Outcome::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// The call went no further than the trunk or the network: the callee's
    /// phone never rang for it. Such an attempt of a call that was never
    /// answered is given back to its record (see the store's
    /// `complete_attempt`): a trunk incident does not use up the list.
    pub fn callee_not_reached(self) -> bool {
        matches!(
            self,
            Outcome::Congestion | Outcome::NetworkFailure | Outcome::TrunkRefused
        )
    }

    /// Outcomes after which this number must never be dialed again.
    pub fn kills_number(self) -> bool {
        matches!(self, Outcome::Sit | Outcome::InvalidNumber | Outcome::Fax)
    }
}

/// What a disposition does to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispositionEffect {
    /// The record is finished.
    Final,
    /// The record is retried under the outcome's retry rule.
    Retry,
    /// The number goes on the campaign's DNC list; the record is removed.
    #[serde(rename = "dnc")]
    DoNotCall,
    /// The number reached is not the contact's (wrong, disconnected, a
    /// fax): it is never dialed again, and the record goes on with its
    /// other numbers (exhausted when none is left) — as the automatic SIT
    /// and fax verdicts do. `Final` would end a record whose next number
    /// may be the right one.
    DeadNumber,
}

impl DispositionEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            DispositionEffect::Final => "final",
            DispositionEffect::Retry => "retry",
            DispositionEffect::DoNotCall => "dnc",
            DispositionEffect::DeadNumber => "dead_number",
        }
    }

    pub fn parse(text: &str) -> Option<DispositionEffect> {
        match text {
            "final" => Some(DispositionEffect::Final),
            "retry" => Some(DispositionEffect::Retry),
            "dnc" => Some(DispositionEffect::DoNotCall),
            "dead_number" => Some(DispositionEffect::DeadNumber),
            _ => None,
        }
    }
}

/// A disposition code an agent (or the system) sets on an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    pub code: String,
    pub label: String,
    pub effect: DispositionEffect,
}

/// A campaign's own wrap-up code (`[[campaign.disposition]]`), besides the
/// system ones; a code of the system list here changes its label or
/// effect for this campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispositionConfig {
    pub code: String,
    pub label: String,
    /// `final` (the record is done), `retry` (dialed again under the
    /// outcome's retry rule) or `dnc` (the number goes on the campaign's
    /// do-not-call list).
    pub effect: DispositionEffect,
}

/// Longest disposition code (it is stored with every attempt and exported).
pub const MAX_DISPOSITION_CODE: usize = 32;

/// Codes the engine sets itself; a campaign may not redefine them.
pub const ENGINE_DISPOSITIONS: [&str; 1] = ["DROP"];

/// What is wrong with a campaign's dispositions, one message per problem.
pub fn disposition_problems(dispositions: &[DispositionConfig]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in dispositions {
        let valid = !d.code.is_empty()
            && d.code.len() <= MAX_DISPOSITION_CODE
            && d.code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            problems.push(format!(
                "code `{}`: use 1 to {MAX_DISPOSITION_CODE} capital letters, digits or `_`",
                d.code
            ));
        } else if ENGINE_DISPOSITIONS.contains(&d.code.as_str()) {
            problems.push(format!(
                "code `{}` is the dialer's own (abandoned calls); pick another",
                d.code
            ));
        } else if !seen.insert(d.code.as_str()) {
            problems.push(format!("code `{}` is listed twice", d.code));
        }
        if d.label.trim().is_empty() {
            problems.push(format!("code `{}` needs a label", d.code));
        }
    }
    problems
}

/// The codes an agent may set on a call of a campaign with `own`
/// dispositions: the system's (minus the dialer's own), the campaign's
/// overriding a system code of the same name, the campaign's own after.
pub fn agent_dispositions(own: &[DispositionConfig]) -> Vec<Disposition> {
    let mut list: Vec<Disposition> = SYSTEM_DISPOSITIONS
        .iter()
        .filter(|(code, _, _)| !ENGINE_DISPOSITIONS.contains(code))
        .map(|(code, label, effect)| Disposition {
            code: code.to_string(),
            label: label.to_string(),
            effect: *effect,
        })
        .collect();
    for d in own {
        let disposition = Disposition {
            code: d.code.clone(),
            label: d.label.clone(),
            effect: d.effect,
        };
        match list.iter_mut().find(|x| x.code == d.code) {
            Some(existing) => *existing = disposition,
            None => list.push(disposition),
        }
    }
    list
}

/// The system dispositions every campaign has.
pub const SYSTEM_DISPOSITIONS: [(&str, &str, DispositionEffect); 9] = [
    ("A", "Answering machine", DispositionEffect::Retry),
    ("B", "Busy", DispositionEffect::Retry),
    ("FAX", "Fax", DispositionEffect::DeadNumber),
    ("NA", "No answer", DispositionEffect::Retry),
    ("SALE", "Sale", DispositionEffect::Final),
    ("VM", "Voicemail", DispositionEffect::Retry),
    ("DROP", "Abandoned", DispositionEffect::Retry),
    ("INVALID", "Invalid number", DispositionEffect::DeadNumber),
    ("DNC", "Do not call", DispositionEffect::DoNotCall),
];
