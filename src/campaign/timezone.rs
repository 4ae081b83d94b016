//! Time zones for a contact whose row gave none: from its numbers.
//!
//! A North American number's zones are its area code's (`number_zones.txt`,
//! generated from libphonenumber's metadata by `scripts/gen-number-zones.py`):
//! one zone for most, every zone of its exchanges for a split one (208 Idaho:
//! Mountain and Pacific). Elsewhere a number's region gives every zone of the
//! region: libphonenumber gives mobile ranges one zone where the country has
//! several (+61 4 Sydney, +7 9 Moscow), so a prefix is no safe guide there.
//! A contact gets the zones of all its numbers, and its calling window is
//! the intersection (open only when open in every one): never too early or
//! too late, at the cost of a shorter window for a contact whose numbers
//! span zones. Give a `time_zone` column (from the CRM's address) to use the
//! full window: an area code is only where a number was issued, and a mobile
//! moves with its owner.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

/// `1NPA zones…` and `RR zones…` lines (see the file's header).
const NUMBER_ZONES: &str = include_str!("number_zones.txt");

struct ZoneTable {
    /// "1NPA" (E.164 digits of a North American area code) → zones.
    area_codes: HashMap<&'static str, Vec<&'static str>>,
    /// ISO 3166 alpha-2 → zones, as the metadata knows them.
    regions: HashMap<&'static str, Vec<&'static str>>,
}

fn table() -> &'static ZoneTable {
    static TABLE: OnceLock<ZoneTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ZoneTable {
            area_codes: HashMap::new(),
            regions: HashMap::new(),
        };
        for line in NUMBER_ZONES.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(key) = words.next() else { continue };
            let zones: Vec<&'static str> = words.collect();
            if key.bytes().all(|b| b.is_ascii_digit()) {
                table.area_codes.insert(key, zones);
            } else {
                table.regions.insert(key, zones);
            }
        }
        table
    })
}

/// The IANA zones where the owner of `e164` (as `+CC…`) may be; `region`
/// gives the number's region (ISO 3166 alpha-2), asked only when the number
/// is not North American with a known area code (finding it is not cheap).
/// None when nothing is known.
pub fn zones_for_number(
    e164: &str,
    region: impl FnOnce() -> String,
) -> Option<BTreeSet<&'static str>> {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    if digits.starts_with('1')
        && let Some(zones) = digits.get(..4).and_then(|npa| table().area_codes.get(npa))
    {
        return Some(zones.iter().copied().collect());
    }
    zones_for_region(&region())
}

/// Every IANA zone of a region (ISO 3166 alpha-2): the metadata's and this
/// file's own list together; None when the region is in neither.
pub fn zones_for_region(region: &str) -> Option<BTreeSet<&'static str>> {
    let mut zones: BTreeSet<&'static str> = table()
        .regions
        .get(region)
        .map(|zones| zones.iter().copied().collect())
        .unwrap_or_default();
    if let Some(listed) = listed_zones(region) {
        zones.extend(listed.split_whitespace());
    }
    (!zones.is_empty()).then_some(zones)
}

/// The zones of the regions whose numbers the metadata places in fewer zones
/// than the region has (those sharing a calling code: +1, +7, +44, +61), and
/// of a few it misses a zone of (Easter Island); names separated by spaces.
fn listed_zones(region: &str) -> Option<&'static str> {
    let zones = match region {
        "US" => {
            "America/New_York America/Chicago America/Denver America/Phoenix \
             America/Los_Angeles America/Anchorage Pacific/Honolulu"
        }
        "CA" => {
            "America/St_Johns America/Halifax America/Toronto America/Winnipeg \
             America/Edmonton America/Vancouver"
        }
        "MX" => "America/Mexico_City America/Cancun America/Chihuahua America/Tijuana",
        "BR" => "America/Sao_Paulo America/Manaus America/Noronha America/Rio_Branco",
        "AU" => {
            "Australia/Sydney Australia/Brisbane Australia/Adelaide Australia/Darwin \
             Australia/Perth Australia/Eucla Australia/Lord_Howe"
        }
        "RU" => {
            "Europe/Kaliningrad Europe/Moscow Europe/Samara Asia/Yekaterinburg Asia/Omsk \
             Asia/Novosibirsk Asia/Krasnoyarsk Asia/Irkutsk Asia/Yakutsk Asia/Vladivostok \
             Asia/Magadan Asia/Kamchatka"
        }
        "KZ" => {
            "Asia/Almaty Asia/Qyzylorda Asia/Qostanay Asia/Aqtobe Asia/Aqtau Asia/Atyrau \
             Asia/Oral"
        }
        "PR" => "America/Puerto_Rico",
        "GB" | "GG" | "JE" | "IM" => "Europe/London",
        "IE" => "Europe/Dublin",
        "PT" => "Europe/Lisbon Atlantic/Azores Atlantic/Madeira",
        "ES" => "Europe/Madrid Atlantic/Canary",
        "NZ" => "Pacific/Auckland Pacific/Chatham",
        "CL" => "America/Santiago Pacific/Easter",
        _ => return None,
    };
    Some(zones)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    use super::*;
    use crate::campaign::window::{CallingWindow, parse_zones};

    fn joined(zones: &BTreeSet<&str>) -> String {
        zones.iter().copied().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn every_zone_in_the_tables_exists() {
        let table = table();
        assert!(table.area_codes.len() > 400, "{}", table.area_codes.len());
        assert!(table.regions.len() > 200, "{}", table.regions.len());
        for zones in table.area_codes.values().chain(table.regions.values()) {
            parse_zones(&zones.join(" ")).unwrap();
        }
        for region in [
            "US", "CA", "MX", "BR", "AU", "RU", "KZ", "PR", "GB", "GG", "JE", "IM",
        ] {
            parse_zones(listed_zones(region).unwrap()).unwrap();
        }
        for region in ["IE", "PT", "ES", "NZ", "CL"] {
            parse_zones(listed_zones(region).unwrap()).unwrap();
        }
        assert_eq!(zones_for_region("XX"), None);
    }

    #[test]
    fn a_north_american_number_takes_its_area_codes_zones() {
        let zones = |e164, region: &str| joined(&zones_for_number(e164, || region.into()).unwrap());
        assert_eq!(zones("+12125550100", "US"), "America/New_York");
        assert_eq!(zones("+13125550100", "US"), "America/Chicago");
        assert_eq!(zones("+14155550100", "US"), "America/Los_Angeles");
        assert_eq!(zones("+18085550100", "US"), "Pacific/Honolulu");
        assert_eq!(zones("+14165550100", "CA"), "America/Toronto");
        assert_eq!(zones("+18765550100", "JM"), "America/Jamaica");
        // Idaho's 208 spans Mountain and Pacific time: both.
        assert_eq!(
            zones("+12085550100", "US"),
            "America/Boise America/Denver America/Los_Angeles"
        );
        // N11 is never an area code: the region's zones, all seven for the US.
        assert!(!table().area_codes.contains_key("1211"));
        assert_eq!(
            zones("+12115550100", "US"),
            "America/Anchorage America/Chicago America/Denver America/Los_Angeles \
             America/New_York America/Phoenix Pacific/Honolulu"
        );
    }

    #[test]
    fn a_country_spanning_zones_gives_all_of_them() {
        let russia = zones_for_region("RU").unwrap();
        assert!(russia.contains("Europe/Kaliningrad") && russia.contains("Asia/Kamchatka"));
        assert!(zones_for_region("PT").unwrap().contains("Atlantic/Azores"));
        assert!(zones_for_region("ES").unwrap().contains("Atlantic/Canary"));
        assert!(zones_for_region("AU").unwrap().contains("Australia/Perth"));
        assert!(zones_for_region("ID").unwrap().contains("Asia/Jayapura"));
        // An Australian mobile: the metadata says Sydney; the country says more.
        let mobile = zones_for_number("+61412345678", || "AU".into()).unwrap();
        assert!(mobile.contains("Australia/Perth"), "{mobile:?}");
        assert_eq!(joined(&zones_for_region("FR").unwrap()), "Europe/Paris");
    }

    #[test]
    fn a_new_york_number_is_called_from_eight_new_york_time() {
        // 08:30 New York on a winter Tuesday: 05:30 in California, 03:30 in Hawaii.
        let at = date(2026, 12, 1)
            .at(8, 30, 0, 0)
            .to_zoned(TimeZone::get("America/New_York").unwrap())
            .unwrap()
            .timestamp();
        let window = CallingWindow::default();
        let new_york = parse_zones(&joined(
            &zones_for_number("+12125550100", || "US".into()).unwrap(),
        ))
        .unwrap();
        assert!(window.is_open(&new_york, at));
        let anywhere_in_the_us = parse_zones(&joined(&zones_for_region("US").unwrap())).unwrap();
        assert!(!window.is_open(&anywhere_in_the_us, at));
    }
}
