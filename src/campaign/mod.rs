//! Campaign list logic as pure functions: the record model, the calling
//! window, the hopper's per-record decision, retry rules after each outcome,
//! time zones from a number's region, parsing one CSV import row, and the
//! call guide's branching.
//!
//! Nothing here touches a database or a clock: the store (`crate::store`)
//! feeds candidates and the current time in, and applies the decisions. The
//! engine and the property tests use the same functions.

pub mod guide;
pub mod hopper;
pub mod import;
pub mod local_presence;
pub mod model;
pub mod rules;
pub mod timezone;
pub mod window;

pub use hopper::{Candidate, CandidatePhone, Decision, PendingCallback, SkipReason, decide};
pub use model::{Outcome, PhoneKind, RecordState};
pub use rules::{CampaignRules, NextStep, RetryDelays, RulesError, after_attempt};
pub use window::CallingWindow;
