//! Time zones for a contact whose row gave none: from its number's region.
//!
//! A country spanning several zones yields all of them, and the calling
//! window is then the intersection (open only when open everywhere in that
//! country): never too early or too late, at the cost of a shorter window.
//! Give a `time_zone` column to use the full window.

/// IANA zones of a region (ISO 3166 alpha-2), as stored on the contact
/// (names separated by spaces); None when the region is not in the table.
pub fn zones_for_region(region: &str) -> Option<&'static str> {
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
             Australia/Perth"
        }
        "RU" => "Europe/Moscow",
        "PR" => "America/Puerto_Rico",
        "GB" | "GG" | "JE" | "IM" => "Europe/London",
        "IE" => "Europe/Dublin",
        "PT" => "Europe/Lisbon",
        "ES" => "Europe/Madrid",
        "FR" => "Europe/Paris",
        "BE" => "Europe/Brussels",
        "NL" => "Europe/Amsterdam",
        "LU" => "Europe/Luxembourg",
        "DE" => "Europe/Berlin",
        "AT" => "Europe/Vienna",
        "CH" => "Europe/Zurich",
        "IT" => "Europe/Rome",
        "DK" => "Europe/Copenhagen",
        "NO" => "Europe/Oslo",
        "SE" => "Europe/Stockholm",
        "FI" => "Europe/Helsinki",
        "PL" => "Europe/Warsaw",
        "CZ" => "Europe/Prague",
        "GR" => "Europe/Athens",
        "RO" => "Europe/Bucharest",
        "HU" => "Europe/Budapest",
        "TR" => "Europe/Istanbul",
        "IL" => "Asia/Jerusalem",
        "ZA" => "Africa/Johannesburg",
        "IN" => "Asia/Kolkata",
        "PH" => "Asia/Manila",
        "SG" => "Asia/Singapore",
        "JP" => "Asia/Tokyo",
        "NZ" => "Pacific/Auckland",
        "AR" => "America/Argentina/Buenos_Aires",
        "CL" => "America/Santiago",
        "CO" => "America/Bogota",
        "PE" => "America/Lima",
        _ => return None,
    };
    Some(zones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_in_the_table_exists() {
        let regions = [
            "US", "CA", "MX", "BR", "AU", "RU", "PR", "GB", "IE", "PT", "ES", "FR", "BE", "NL",
            "LU", "DE", "AT", "CH", "IT", "DK", "NO", "SE", "FI", "PL", "CZ", "GR", "RO", "HU",
            "TR", "IL", "ZA", "IN", "PH", "SG", "JP", "NZ", "AR", "CL", "CO", "PE", "JE",
        ];
        for region in regions {
            let zones = zones_for_region(region).unwrap();
            crate::campaign::window::parse_zones(zones).unwrap();
        }
        assert_eq!(zones_for_region("XX"), None);
    }
}
