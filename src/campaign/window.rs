//! The calling window: days of the week and hours, in the contact's local
//! time, DST-correct (jiff and the bundled IANA database).
//!
//! A contact may carry several candidate zones (its number's country spans
//! several and no zone was given): the window is then open only when it is
//! open in every one of them, so no one is called early or late.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// Day names in the configuration, Monday first.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallingWindow {
    /// Minutes after local midnight when calling may start (inclusive).
    pub start_min: u16,
    /// Minutes after local midnight when calling must stop (exclusive).
    pub end_min: u16,
    /// Allowed weekdays, Monday = index 0.
    pub days: [bool; 7],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("`{0}` is not a window; expected HH:MM-HH:MM like 08:00-21:00")]
    Hours(String),
    #[error("`{0}` is not a day; use {days}", days = DAY_NAMES.join(", "))]
    Day(String),
    #[error("no calling day is allowed")]
    NoDays,
}

impl Default for CallingWindow {
    /// 08:00–21:00, Monday to Saturday.
    fn default() -> Self {
        CallingWindow {
            start_min: 8 * 60,
            end_min: 21 * 60,
            days: [true, true, true, true, true, true, false],
        }
    }
}

impl CallingWindow {
    /// From the configuration's `call_hours = "HH:MM-HH:MM"` and `call_days`.
    pub fn parse(hours: &str, days: &[String]) -> Result<CallingWindow, WindowError> {
        let bad = || WindowError::Hours(hours.to_string());
        let (start, end) = hours.split_once('-').ok_or_else(bad)?;
        let minutes = |hhmm: &str| -> Option<u16> {
            let (h, m) = hhmm.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
        };
        let (start_min, end_min) = (
            minutes(start).ok_or_else(bad)?,
            minutes(end).ok_or_else(bad)?,
        );
        if start_min >= end_min {
            return Err(bad());
        }
        let mut allowed = [false; 7];
        for day in days {
            let index = DAY_NAMES
                .iter()
                .position(|name| name.eq_ignore_ascii_case(day))
                .ok_or_else(|| WindowError::Day(day.clone()))?;
            allowed[index] = true;
        }
        if !allowed.contains(&true) {
            return Err(WindowError::NoDays);
        }
        Ok(CallingWindow {
            start_min,
            end_min,
            days: allowed,
        })
    }

    /// Is `at` inside the window in zone `tz`?
    pub fn is_open_in(&self, tz: &TimeZone, at: Timestamp) -> bool {
        let local = at.to_zoned(tz.clone());
        let day = local.weekday().to_monday_zero_offset() as usize;
        let minute = u16::from(local.hour() as u8) * 60 + u16::from(local.minute() as u8);
        self.days.get(day).copied().unwrap_or(false)
            && minute >= self.start_min
            && minute < self.end_min
    }

    /// Is `at` inside the window in every one of `zones`?
    pub fn is_open(&self, zones: &[TimeZone], at: Timestamp) -> bool {
        !zones.is_empty() && zones.iter().all(|tz| self.is_open_in(tz, at))
    }

    /// The earliest instant ≥ `at` when the window is open in `tz`, within
    /// eight days (None when no day is allowed).
    pub fn next_open_in(&self, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
        if self.is_open_in(tz, at) {
            return Some(at);
        }
        let mut date: Date = at.to_zoned(tz.clone()).date();
        for _ in 0..9 {
            let day = date.weekday().to_monday_zero_offset() as usize;
            if self.days.get(day).copied().unwrap_or(false) {
                let start = date
                    .at(
                        (self.start_min / 60) as i8,
                        (self.start_min % 60) as i8,
                        0,
                        0,
                    )
                    .to_zoned(tz.clone())
                    .ok()?
                    .timestamp();
                if start >= at {
                    return Some(start);
                }
                // Today's start has passed: if we are before today's end, the
                // start fell in a DST gap that moved it; check the instant itself.
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The earliest instant ≥ `at` when the window is open in all `zones`,
    /// within about two weeks.
    pub fn next_open(&self, zones: &[TimeZone], at: Timestamp) -> Option<Timestamp> {
        let mut candidate = at;
        for _ in 0..64 {
            let mut latest = candidate;
            for tz in zones {
                let open = self.next_open_in(tz, candidate)?;
                if open > latest {
                    latest = open;
                }
            }
            if latest == candidate {
                return self.is_open(zones, candidate).then_some(candidate);
            }
            candidate = latest;
        }
        None
    }
}

/// Parses a contact's zone list: IANA names separated by spaces.
pub fn parse_zones(text: &str) -> Result<Vec<TimeZone>, String> {
    let zones: Result<Vec<TimeZone>, String> = text
        .split_whitespace()
        .map(|name| TimeZone::get(name).map_err(|_| format!("unknown time zone `{name}`")))
        .collect();
    let zones = zones?;
    if zones.is_empty() {
        return Err("no time zone".into());
    }
    Ok(zones)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn new_york_window_follows_dst() {
        let window = CallingWindow::default();
        let ny = TimeZone::get("America/New_York").unwrap();
        // Winter: 08:00 EST = 13:00 UTC.
        assert!(!window.is_open_in(&ny, ts("2026-01-14T12:59:00Z")));
        assert!(window.is_open_in(&ny, ts("2026-01-14T13:00:00Z")));
        // Summer: 08:00 EDT = 12:00 UTC.
        assert!(window.is_open_in(&ny, ts("2026-07-15T12:00:00Z")));
        // 21:00 EDT = 01:00 UTC next day: closed.
        assert!(!window.is_open_in(&ny, ts("2026-07-16T01:00:00Z")));
        // Sunday is not a default calling day.
        assert!(!window.is_open_in(&ny, ts("2026-07-19T15:00:00Z")));
    }

    #[test]
    fn next_open_skips_sunday_and_crosses_dst_change() {
        let window = CallingWindow::default();
        let ny = TimeZone::get("America/New_York").unwrap();
        // Saturday 2026-03-07 22:00 EST → Monday 2026-03-09 08:00 EDT (DST began Sunday).
        let next = window
            .next_open_in(&ny, ts("2026-03-08T03:00:00Z"))
            .unwrap();
        assert_eq!(next, ts("2026-03-09T12:00:00Z"));
    }

    #[test]
    fn several_zones_open_only_in_their_intersection() {
        let window = CallingWindow::default();
        let zones = parse_zones("America/New_York America/Los_Angeles").unwrap();
        // 12:00 UTC in July = 08:00 New York, 05:00 Los Angeles: closed.
        assert!(!window.is_open(&zones, ts("2026-07-15T12:00:00Z")));
        let next = window
            .next_open(&zones, ts("2026-07-15T12:00:00Z"))
            .unwrap();
        assert_eq!(next, ts("2026-07-15T15:00:00Z"));
        assert!(window.is_open(&zones, next));
    }

    #[test]
    fn parses_configuration_strings() {
        let window = CallingWindow::parse("09:30-17:00", &["mon".into(), "fri".into()]).unwrap();
        assert_eq!(window.start_min, 570);
        assert_eq!(window.days, [true, false, false, false, true, false, false]);
        assert!(CallingWindow::parse("17:00-09:00", &["mon".into()]).is_err());
        assert!(CallingWindow::parse("09:00-17:00", &["funday".into()]).is_err());
        assert!(parse_zones("Mars/Olympus").is_err());
    }
}
