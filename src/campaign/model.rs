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
    pub const ALL: [Outcome; 12] = [
        Outcome::Human,
        Outcome::Machine,
        Outcome::Fax,
        Outcome::Busy,
        Outcome::NoAnswer,
        Outcome::Congestion,
        Outcome::NetworkFailure,
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
    DoNotCall,
}

impl DispositionEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            DispositionEffect::Final => "final",
            DispositionEffect::Retry => "retry",
            DispositionEffect::DoNotCall => "dnc",
        }
    }

    pub fn parse(text: &str) -> Option<DispositionEffect> {
        match text {
            "final" => Some(DispositionEffect::Final),
            "retry" => Some(DispositionEffect::Retry),
            "dnc" => Some(DispositionEffect::DoNotCall),
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

/// The system dispositions every campaign has.
pub const SYSTEM_DISPOSITIONS: [(&str, &str, DispositionEffect); 9] = [
    ("A", "Answering machine", DispositionEffect::Retry),
    ("B", "Busy", DispositionEffect::Retry),
    ("FAX", "Fax", DispositionEffect::Final),
    ("NA", "No answer", DispositionEffect::Retry),
    ("SALE", "Sale", DispositionEffect::Final),
    ("VM", "Voicemail", DispositionEffect::Retry),
    ("DROP", "Abandoned", DispositionEffect::Retry),
    ("INVALID", "Invalid number", DispositionEffect::Final),
    ("DNC", "Do not call", DispositionEffect::DoNotCall),
];
