//! Trunk call outcomes: what a final response (or its absence) means to the
//! dialer, kept with the SIP code and reason that produced it.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answered,
    /// 486, 600.
    Busy,
    /// Ring timeout (we sent CANCEL), 480, 408.
    NoAnswer,
    /// 404, 410 (a number disconnected), 484, 604.
    InvalidNumber,
    /// 403, 603, 607 (the callee marked the call unwanted, RFC 8197), 608
    /// (the network's call analytics blocked it, RFC 8688), or a digest
    /// challenge our credentials could not answer.
    Rejected,
    /// 503 (Retry-After honoured by the caller), 502, 504.
    Congestion,
    /// No response at all (Timer B) or a transport error.
    NetworkFailure,
    /// We hung up before an answer for another reason than the ring timeout.
    Cancelled,
    /// Any other final response.
    Failed,
}

impl Outcome {
    /// The outcome a 3xx–6xx final response maps to.
    pub fn from_final_code(code: u16) -> Outcome {
        match code {
            200..=299 => Outcome::Answered,
            486 | 600 => Outcome::Busy,
            480 | 408 => Outcome::NoAnswer,
            404 | 410 | 484 | 604 => Outcome::InvalidNumber,
            403 | 603 | 607 | 608 | 401 | 407 => Outcome::Rejected,
            502..=504 => Outcome::Congestion,
            _ => Outcome::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no_answer",
            Outcome::InvalidNumber => "invalid_number",
            Outcome::Rejected => "rejected",
            Outcome::Congestion => "congestion",
            Outcome::NetworkFailure => "network_failure",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a call ended: the outcome, the SIP code and reason behind it, and for
/// congestion how long the trunk asked us to wait (Retry-After).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    pub outcome: Outcome,
    pub sip_code: Option<u16>,
    pub reason: String,
    pub retry_after: Option<Duration>,
    /// For answered calls: who sent the BYE.
    pub hung_up_by_remote: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_codes_map_to_outcomes() {
        assert_eq!(Outcome::from_final_code(486), Outcome::Busy);
        assert_eq!(Outcome::from_final_code(600), Outcome::Busy);
        assert_eq!(Outcome::from_final_code(480), Outcome::NoAnswer);
        assert_eq!(Outcome::from_final_code(484), Outcome::InvalidNumber);
        assert_eq!(Outcome::from_final_code(603), Outcome::Rejected);
        assert_eq!(Outcome::from_final_code(607), Outcome::Rejected);
        assert_eq!(Outcome::from_final_code(608), Outcome::Rejected);
        assert_eq!(Outcome::from_final_code(410), Outcome::InvalidNumber);
        assert_eq!(Outcome::from_final_code(503), Outcome::Congestion);
        assert_eq!(Outcome::from_final_code(500), Outcome::Failed);
    }
}
