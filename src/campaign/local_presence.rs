//! Local presence: the caller ID a call presents is the campaign number
//! closest to the number dialed — same country first, then the same area:
//! in North America the same three-digit area code (412 is no nearer 415
//! than 202 is), elsewhere the longest common start of the national number
//! when it is at least two digits (a shared first digit is too coarse:
//! every UK geographic number starts with 1 or 2, Italian ones with 0).
//! Without metadata on each plan's area-code lengths (libphonenumber's
//! geocoding is not in the `phonenumber` crate), this is the nearest
//! general rule. People answer a local number more often than
//! a distant or foreign one; the numbers must be the campaign's own, real
//! and answerable (the US Truth in Caller ID Act, Ofcom's CLI guidance), so
//! they come only from its `caller_id` and `caller_ids`.

use phonenumber::Mode;

/// The North American Numbering Plan's country code and area-code length.
const NANP: u16 = 1;
const NANP_AREA_CODE_DIGITS: usize = 3;
/// Elsewhere, the fewest leading national digits that make two numbers
/// "the same area".
const MIN_SHARED_DIGITS: usize = 2;

/// A campaign's caller IDs, parsed once.
#[derive(Debug, Clone, Default)]
pub struct LocalPresence {
    /// In preference order for ties: the campaign's `caller_id` first.
    numbers: Vec<Number>,
}

#[derive(Debug, Clone)]
struct Number {
    e164: String,
    country: u16,
    national: String,
}

impl Number {
    fn parse(e164: &str) -> Option<Number> {
        let number = phonenumber::parse(None, e164).ok()?;
        let country = number.code().value();
        let formatted = number.format().mode(Mode::E164).to_string();
        let national = formatted
            .strip_prefix('+')?
            .strip_prefix(&country.to_string())?
            .to_string();
        Some(Number {
            e164: e164.to_string(),
            country,
            national,
        })
    }

    /// 0: another country; 1: the same country; more: the same area, by
    /// how many digits the national numbers share from their start.
    fn closeness(&self, callee: &Number) -> usize {
        if self.country != callee.country {
            return 0;
        }
        let shared = self
            .national
            .bytes()
            .zip(callee.national.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let same_area = if self.country == NANP {
            shared >= NANP_AREA_CODE_DIGITS
        } else {
            shared >= MIN_SHARED_DIGITS
        };
        if same_area { 1 + shared } else { 1 }
    }
}

impl LocalPresence {
    /// From the numbers a campaign may present, best first for ties; those
    /// that do not parse as E.164 are left out (the configuration check
    /// refuses them before).
    pub fn new<'a>(numbers: impl IntoIterator<Item = &'a str>) -> LocalPresence {
        let mut parsed: Vec<Number> = Vec::new();
        for number in numbers.into_iter().filter_map(Number::parse) {
            if !parsed.iter().any(|n| n.e164 == number.e164) {
                parsed.push(number);
            }
        }
        LocalPresence { numbers: parsed }
    }

    /// The number to present when calling `callee` (E.164): the closest,
    /// the earliest of equals. `None` without numbers; a callee that does
    /// not parse gets the first.
    pub fn caller_id_for(&self, callee: &str) -> Option<&str> {
        let first = self.numbers.first()?;
        let Some(callee) = Number::parse(callee) else {
            return Some(&first.e164);
        };
        let mut best = first;
        let mut best_closeness = first.closeness(&callee);
        for number in &self.numbers[1..] {
            let closeness = number.closeness(&callee);
            if closeness > best_closeness {
                (best, best_closeness) = (number, closeness);
            }
        }
        Some(&best.e164)
    }

    /// The numbers it chooses from, in order.
    pub fn numbers(&self) -> impl Iterator<Item = &str> {
        self.numbers.iter().map(|n| n.e164.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence() -> LocalPresence {
        LocalPresence::new([
            "+12025550100",  // the campaign's own (Washington DC)
            "+14155550100",  // San Francisco
            "+14155550199",  // San Francisco again: the first of equals wins
            "+12125550100",  // New York
            "+442079460000", // London
            "+441614960000", // Manchester
            "+390612345678", // Rome (a national number with a leading 0)
        ])
    }

    #[test]
    fn a_callee_gets_the_number_of_its_area_code() {
        let p = presence();
        assert_eq!(p.caller_id_for("+14155551234"), Some("+14155550100"));
        assert_eq!(p.caller_id_for("+12125559876"), Some("+12125550100"));
        assert_eq!(p.caller_id_for("+12025551111"), Some("+12025550100"));
        assert_eq!(p.caller_id_for("+441615550000"), Some("+441614960000"));
        assert_eq!(p.caller_id_for("+442071234567"), Some("+442079460000"));
        assert_eq!(p.caller_id_for("+390698765432"), Some("+390612345678"));
    }

    #[test]
    fn without_a_local_number_the_same_country_then_the_campaigns_own() {
        let p = presence();
        // Chicago: no 312 number; the campaign's own US number (first of
        // the US numbers sharing no more than the country).
        assert_eq!(p.caller_id_for("+13125550000"), Some("+12025550100"));
        // Pittsburgh (412) is no nearer San Francisco (415).
        assert_eq!(p.caller_id_for("+14125550000"), Some("+12025550100"));
        // Birmingham (0121) is no nearer Manchester (0161): a UK number,
        // the first of them.
        assert_eq!(p.caller_id_for("+441214960000"), Some("+442079460000"));
        // France: no French number; the campaign's own.
        assert_eq!(p.caller_id_for("+33142685300"), Some("+12025550100"));
        // Garbage: the campaign's own.
        assert_eq!(p.caller_id_for("not a number"), Some("+12025550100"));
    }

    #[test]
    fn no_numbers_no_choice_and_duplicates_count_once() {
        assert_eq!(LocalPresence::default().caller_id_for("+14155551234"), None);
        let p = LocalPresence::new(["+14155550100", "+14155550100", "junk"]);
        assert_eq!(p.numbers().collect::<Vec<_>>(), ["+14155550100"]);
    }
}
