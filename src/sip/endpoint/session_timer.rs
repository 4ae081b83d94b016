//! Session timers (RFC 4028): reading a `Session-Expires` header, deciding
//! which side refreshes, and when the side that does not refresh gives up
//! on a session nobody refreshed.

use std::time::Duration;

use crate::sip::codec::param;

/// RFC 4028 §5: no session interval may be shorter than 90 s.
pub(super) const MIN_SESSION_INTERVAL: Duration = Duration::from_secs(90);

/// The longest interval we take from a far end (a day): a larger value is
/// a typo or garbage, and a deadline that far away is no deadline.
const MAX_SESSION_INTERVAL: Duration = Duration::from_secs(86_400);

/// Which side of the transaction that set the interval refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresher {
    Uac,
    Uas,
}

/// A parsed `Session-Expires: delta-seconds[;refresher=uac|uas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionExpires {
    pub interval: Duration,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    pub fn parse(value: &str) -> Option<SessionExpires> {
        let seconds = value.split(';').next()?.trim().parse::<u64>().ok()?;
        let refresher = match param(value, "refresher") {
            Some(r) if r.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(r) if r.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            _ => None,
        };
        Some(SessionExpires {
            interval: Duration::from_secs(seconds),
            refresher,
        })
    }

    /// Whether we refresh, `we_sent` telling whether we were the UAC of the
    /// transaction whose 2xx carried this value; `None` without a
    /// `refresher` parameter (a 2xx must have one, RFC 4028 §9).
    pub fn we_refresh(self, we_sent: bool) -> Option<bool> {
        match self.refresher? {
            Refresher::Uac => Some(we_sent),
            Refresher::Uas => Some(!we_sent),
        }
    }
}

/// Our 200's `Session-Expires` for a far end's re-INVITE or UPDATE that
/// carried `requested`, and whether the 200 needs `Require: timer`. A
/// request that names its refresher gets it back; one that does not is
/// left to refresh itself when it supports timers (RFC 4028 §9: the UAS
/// picks; the requester that sent the refresh is the natural refresher),
/// otherwise we refresh.
pub(super) fn answer_to_refresh(requested: &str, supports_timer: bool) -> (String, bool) {
    let requested = requested.trim();
    match SessionExpires::parse(requested).and_then(|s| s.refresher) {
        Some(refresher) => (requested.to_string(), refresher == Refresher::Uac),
        None if supports_timer => (format!("{requested};refresher=uac"), true),
        None => (format!("{requested};refresher=uas"), false),
    }
}

/// How long after the last refresh the side that does not refresh sends
/// its BYE: "slightly before the session expiration", the minimum of 32 s
/// and a third of the interval before it (RFC 4028 §10). The interval is
/// taken as at least 90 s — a far end that asks for less cannot make us
/// hang up sooner than a minute — and at most a day.
pub(super) fn refreshee_gives_up_after(interval: Duration) -> Duration {
    let interval = interval.clamp(MIN_SESSION_INTERVAL, MAX_SESSION_INTERVAL);
    interval - (interval / 3).min(Duration::from_secs(32))
}

/// Whether a `Supported` (or `Require`) header's values name `timer`.
pub(super) fn names_timer<'a>(mut values: impl Iterator<Item = &'a str>) -> bool {
    values.any(|v| {
        v.split(',')
            .any(|option| option.trim().eq_ignore_ascii_case("timer"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_interval_and_refresher() {
        assert_eq!(
            SessionExpires::parse("1800;refresher=UAS"),
            Some(SessionExpires {
                interval: Duration::from_secs(1800),
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(
            SessionExpires::parse(" 90 ").map(|s| s.refresher),
            Some(None)
        );
        assert_eq!(SessionExpires::parse("soon;refresher=uac"), None);
        assert_eq!(SessionExpires::parse("-5"), None);
    }

    #[test]
    fn the_refresher_depends_on_who_sent_the_request() {
        let uac = SessionExpires::parse("120;refresher=uac").unwrap();
        assert_eq!(uac.we_refresh(true), Some(true));
        assert_eq!(uac.we_refresh(false), Some(false));
        let uas = SessionExpires::parse("120;refresher=uas").unwrap();
        assert_eq!(uas.we_refresh(true), Some(false));
        assert_eq!(uas.we_refresh(false), Some(true));
        assert_eq!(SessionExpires::parse("120").unwrap().we_refresh(true), None);
    }

    #[test]
    fn an_unnamed_refresher_is_the_requester_when_it_supports_timers() {
        assert_eq!(
            answer_to_refresh("600", true),
            ("600;refresher=uac".into(), true)
        );
        assert_eq!(
            answer_to_refresh("600", false),
            ("600;refresher=uas".into(), false)
        );
        assert_eq!(
            answer_to_refresh("600;refresher=uas", true),
            ("600;refresher=uas".into(), false)
        );
        assert_eq!(
            answer_to_refresh("600;refresher=uac", false),
            ("600;refresher=uac".into(), true)
        );
    }

    #[test]
    fn the_bye_goes_a_third_or_32_s_before_expiry() {
        // 90 s: a third (30 s) before; 1800 s: 32 s before.
        assert_eq!(
            refreshee_gives_up_after(Duration::from_secs(90)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refreshee_gives_up_after(Duration::from_secs(1800)),
            Duration::from_secs(1768)
        );
        // Shorter than RFC 4028's floor: taken as 90 s.
        assert_eq!(
            refreshee_gives_up_after(Duration::from_secs(1)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refreshee_gives_up_after(Duration::from_secs(u64::MAX / 2)),
            Duration::from_secs(86_400 - 32)
        );
    }

    #[test]
    fn timer_is_found_among_options() {
        assert!(names_timer(["100rel, Timer"].into_iter()));
        assert!(names_timer(["replaces", "timer"].into_iter()));
        assert!(!names_timer(["timers, 100rel"].into_iter()));
        assert!(!names_timer(std::iter::empty()));
    }
}
