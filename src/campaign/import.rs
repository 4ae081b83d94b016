//! Parsing a contact list, one physical line at a time: the header's field
//! mapping, CSV field splitting, E.164 normalisation and time zones.
//!
//! Every line gives either a row to store or a reason it was rejected; no
//! line is dropped silently. A field may not contain a line break, so an
//! unbalanced quote is reported as broken quoting on its own line instead of
//! swallowing the lines after it.

use std::collections::BTreeSet;
use std::io::{BufRead, Read};

use phonenumber::country;
use serde::Deserialize;

use super::model::PhoneKind;
use super::timezone::zones_for_number;
use super::window::parse_zones;

/// Longest line accepted; longer lines are rejected (and skipped to their end).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A field mapping file (`--mapping FILE`, TOML). Absent keys fall back to
/// the header's conventional names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportMapping {
    /// Column holding the contact's external id (default `id` or `external_id`).
    pub external_id: Option<String>,
    /// Column holding the contact's name (default `name`).
    pub name: Option<String>,
    /// Column holding an IANA time zone (default `time_zone` or `tz`).
    pub time_zone: Option<String>,
    /// Column holding an integer priority, higher first (default `priority`).
    pub priority: Option<String>,
    /// Phone columns in chain order (default: every column named `phone…`,
    /// `home…`, `mobile…`, `cell…` or `work…`).
    #[serde(default, rename = "phone")]
    pub phones: Vec<PhoneColumn>,
    /// Columns kept as custom fields (default: every other column).
    pub custom: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneColumn {
    pub column: String,
    #[serde(default = "default_phone_kind")]
    pub kind: PhoneKind,
}

fn default_phone_kind() -> PhoneKind {
    PhoneKind::Other
}

impl ImportMapping {
    pub fn parse(text: &str) -> Result<ImportMapping, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }
}

/// A contact row ready for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// Physical line number in the file (the header is line 1).
    pub line: u64,
    pub external_id: String,
    pub name: String,
    /// IANA zone names separated by spaces.
    pub time_zones: String,
    pub priority: i32,
    /// Custom fields as a JSON object.
    pub custom_json: String,
    /// Phone numbers in chain order, E.164, without duplicates.
    pub phones: Vec<(PhoneKind, String)>,
}

/// A line that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

/// Problems with the file as a whole (its header or mapping).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("the file is empty: it needs a header line")]
    Empty,
    #[error("the header line is not valid CSV: {0}")]
    Header(String),
    #[error("no column `{0}` in the header")]
    MissingColumn(String),
    #[error("no external id column: name one `id` or `external_id`, or map it")]
    NoIdColumn,
    #[error("no phone column: name one `phone`, `home`, `mobile` or `work`, or map it")]
    NoPhoneColumn,
    #[error("`{0}` is not a region code like US or GB")]
    Region(String),
    #[error("cannot read the file: {0}")]
    Io(String),
}

/// Where each field of a row lives, resolved once from the header.
#[derive(Debug, Clone)]
pub struct Layout {
    columns: usize,
    external_id: usize,
    name: Option<usize>,
    time_zone: Option<usize>,
    priority: Option<usize>,
    phones: Vec<(usize, PhoneKind, String)>,
    custom: Vec<(usize, String)>,
    region: country::Id,
}

fn phone_kind_of(header: &str) -> Option<PhoneKind> {
    let h = header.to_ascii_lowercase();
    if h.starts_with("phone") || h.starts_with("other_phone") {
        Some(PhoneKind::Other)
    } else if h.starts_with("home") {
        Some(PhoneKind::Home)
    } else if h.starts_with("mobile") || h.starts_with("cell") {
        Some(PhoneKind::Mobile)
    } else if h.starts_with("work") {
        Some(PhoneKind::Work)
    } else {
        None
    }
}

impl Layout {
    pub fn new(
        header: &[String],
        mapping: &ImportMapping,
        default_region: &str,
    ) -> Result<Layout, LayoutError> {
        let region: country::Id = default_region
            .parse()
            .map_err(|_| LayoutError::Region(default_region.to_string()))?;
        let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let mapped =
            |key: &Option<String>, defaults: &[&str]| -> Result<Option<usize>, LayoutError> {
                match key {
                    Some(column) => find(column)
                        .map(Some)
                        .ok_or_else(|| LayoutError::MissingColumn(column.clone())),
                    None => Ok(defaults.iter().find_map(|d| find(d))),
                }
            };
        let external_id =
            mapped(&mapping.external_id, &["id", "external_id"])?.ok_or(LayoutError::NoIdColumn)?;
        let name = mapped(&mapping.name, &["name"])?;
        let time_zone = mapped(&mapping.time_zone, &["time_zone", "tz", "timezone"])?;
        let priority = mapped(&mapping.priority, &["priority"])?;
        let phones: Vec<(usize, PhoneKind, String)> = if mapping.phones.is_empty() {
            header
                .iter()
                .enumerate()
                .filter_map(|(i, h)| phone_kind_of(h).map(|kind| (i, kind, h.clone())))
                .collect()
        } else {
            mapping
                .phones
                .iter()
                .map(|p| {
                    find(&p.column)
                        .map(|i| (i, p.kind, p.column.clone()))
                        .ok_or_else(|| LayoutError::MissingColumn(p.column.clone()))
                })
                .collect::<Result<_, _>>()?
        };
        if phones.is_empty() {
            return Err(LayoutError::NoPhoneColumn);
        }
        let used: Vec<usize> = [Some(external_id), name, time_zone, priority]
            .into_iter()
            .flatten()
            .chain(phones.iter().map(|p| p.0))
            .collect();
        let custom = match &mapping.custom {
            Some(columns) => columns
                .iter()
                .map(|c| {
                    find(c)
                        .map(|i| (i, c.clone()))
                        .ok_or_else(|| LayoutError::MissingColumn(c.clone()))
                })
                .collect::<Result<_, _>>()?,
            None => header
                .iter()
                .enumerate()
                .filter(|(i, _)| !used.contains(i))
                .map(|(i, h)| (i, h.clone()))
                .collect(),
        };
        Ok(Layout {
            columns: header.len(),
            external_id,
            name,
            time_zone,
            priority,
            phones,
            custom,
            region,
        })
    }

    /// Turns one line's fields into a row, or says why it cannot be imported.
    pub fn row(&self, line: u64, fields: &[String]) -> Result<ImportRow, String> {
        if fields.len() != self.columns {
            return Err(format!(
                "expected {} fields like the header, found {}",
                self.columns,
                fields.len()
            ));
        }
        let get = |i: usize| fields.get(i).map(|f| f.trim()).unwrap_or("");
        let external_id = get(self.external_id);
        if external_id.is_empty() {
            return Err("empty external id".into());
        }
        let mut phones: Vec<(PhoneKind, String)> = Vec::with_capacity(self.phones.len());
        // Beside `phones`, to place the contact by its numbers when the row
        // gives no zone (its region is looked up only then: it is not cheap).
        let mut numbers: Vec<phonenumber::PhoneNumber> = Vec::with_capacity(self.phones.len());
        for (index, kind, column) in &self.phones {
            let text = get(*index);
            if text.is_empty() {
                continue;
            }
            let number = phonenumber::parse(Some(self.region), text)
                .ok()
                .filter(phonenumber::is_valid)
                .ok_or_else(|| {
                    format!("column `{column}`: `{text}` is not a valid phone number")
                })?;
            let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
            if !phones.iter().any(|(_, existing)| *existing == e164) {
                phones.push((*kind, e164));
                numbers.push(number);
            }
        }
        if phones.is_empty() {
            return Err("no phone number".into());
        }
        let time_zones = match self.time_zone.map(get).filter(|t| !t.is_empty()) {
            Some(zone) => {
                parse_zones(zone)?;
                zone.split_whitespace().collect::<Vec<_>>().join(" ")
            }
            None => {
                let mut zones: BTreeSet<&'static str> = BTreeSet::new();
                for (number, (_, e164)) in numbers.iter().zip(&phones) {
                    let region = || number.country().id().unwrap_or(self.region);
                    let found = zones_for_number(e164, || region().as_ref().to_string())
                        .ok_or_else(|| {
                            format!(
                                "no time zone known for {e164} (region {}); add a time_zone column",
                                region().as_ref()
                            )
                        })?;
                    zones.extend(found);
                }
                zones.into_iter().collect::<Vec<_>>().join(" ")
            }
        };
        let priority = match self.priority.map(get).filter(|p| !p.is_empty()) {
            Some(text) => text
                .parse::<i32>()
                .map_err(|_| format!("priority `{text}` is not an integer"))?,
            None => 0,
        };
        let custom: serde_json::Map<String, serde_json::Value> = self
            .custom
            .iter()
            .map(|(i, name)| (name.clone(), serde_json::Value::String(get(*i).to_string())))
            .collect();
        Ok(ImportRow {
            line,
            external_id: external_id.to_string(),
            name: self.name.map(get).unwrap_or("").to_string(),
            time_zones,
            priority,
            custom_json: serde_json::Value::Object(custom).to_string(),
            phones,
        })
    }
}

/// `region` (ISO 3166 alpha-2) as the phone library's region, or why not.
pub fn region_id(region: &str) -> Result<country::Id, String> {
    region
        .parse()
        .map_err(|_| format!("`{region}` is not a region code like US or GB"))
}

/// `text` as an E.164 number (`+15551230001`), read as a number of
/// `region` (ISO 3166 alpha-2) when it has no country code — the same
/// rule as a list's phone columns.
pub fn e164(text: &str, region: &str) -> Result<String, String> {
    let region = region_id(region)?;
    let text = text.trim();
    phonenumber::parse(Some(region), text)
        .ok()
        .filter(phonenumber::is_valid)
        .map(|number| number.format().mode(phonenumber::Mode::E164).to_string())
        .ok_or_else(|| format!("`{text}` is not a valid phone number"))
}

/// Splits one line (without its line break) into CSV fields (RFC 4180,
/// comma-separated, `""` inside quotes); errors on broken quoting.
pub fn split_fields(line: &str, fields: &mut Vec<String>) -> Result<(), String> {
    fields.clear();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("broken quoting: a quoted field is not closed".into()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(());
                }
                Some(',') => fields.push(field),
                Some(_) => {
                    return Err("broken quoting: text after a closing quote".into());
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(());
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err("broken quoting: a quote inside an unquoted field".into());
                    }
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// What the parser yields for one line.
#[derive(Debug)]
pub enum Parsed {
    Row(ImportRow),
    Rejected(Rejection),
}

/// A streaming reader of a contact list: header first, then one
/// [`Parsed`] per non-empty line, with bounded memory.
pub struct ImportReader<R> {
    input: R,
    layout: Layout,
    line: u64,
    buffer: Vec<u8>,
    fields: Vec<String>,
}

/// Reads one physical line into `buffer` (without the line break); returns
/// false at end of input, and whether the line was too long.
fn read_line<R: BufRead>(input: &mut R, buffer: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buffer.clear();
    let limit = (MAX_LINE_BYTES + 1) as u64;
    let read = (&mut *input).take(limit).read_until(b'\n', buffer)?;
    if read == 0 {
        return Ok(None);
    }
    let mut too_long = false;
    if buffer.last() == Some(&b'\n') {
        buffer.pop();
    } else if buffer.len() > MAX_LINE_BYTES {
        too_long = true;
        // Skip the rest of this line.
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let n = (&mut *input).take(limit).read_until(b'\n', &mut rest)?;
            if n == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
    }
    if buffer.last() == Some(&b'\r') {
        buffer.pop();
    }
    Ok(Some(too_long))
}

impl<R: BufRead> ImportReader<R> {
    pub fn new(
        mut input: R,
        mapping: &ImportMapping,
        default_region: &str,
    ) -> Result<ImportReader<R>, LayoutError> {
        let mut buffer = Vec::new();
        let io = |e: std::io::Error| LayoutError::Io(e.to_string());
        if read_line(&mut input, &mut buffer).map_err(io)?.is_none() {
            return Err(LayoutError::Empty);
        }
        let text =
            std::str::from_utf8(&buffer).map_err(|_| LayoutError::Header("not UTF-8".into()))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut header = Vec::new();
        split_fields(text, &mut header).map_err(LayoutError::Header)?;
        let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
        let layout = Layout::new(&header, mapping, default_region)?;
        Ok(ImportReader {
            input,
            layout,
            line: 1,
            buffer,
            fields: Vec::new(),
        })
    }

    /// The next line's result; None at end of input.
    pub fn next_line(&mut self) -> Result<Option<Parsed>, std::io::Error> {
        loop {
            let Some(too_long) = read_line(&mut self.input, &mut self.buffer)? else {
                return Ok(None);
            };
            self.line += 1;
            let line = self.line;
            let reject = |reason: String| Ok(Some(Parsed::Rejected(Rejection { line, reason })));
            if too_long {
                return reject(format!("line longer than {MAX_LINE_BYTES} bytes"));
            }
            if self.buffer.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let Ok(text) = std::str::from_utf8(&self.buffer) else {
                return reject("not UTF-8".into());
            };
            if let Err(reason) = split_fields(text, &mut self.fields) {
                return reject(reason);
            }
            return match self.layout.row(line, &self.fields) {
                Ok(row) => Ok(Some(Parsed::Row(row))),
                Err(reason) => reject(reason),
            };
        }
    }
}

/// Parses a whole list in memory (tests and the fuzz target).
pub fn parse_all(
    bytes: &[u8],
    mapping: &ImportMapping,
    default_region: &str,
) -> Result<Vec<Parsed>, LayoutError> {
    let mut reader = ImportReader::new(bytes, mapping, default_region)?;
    let mut out = Vec::new();
    while let Some(parsed) = reader
        .next_line()
        .map_err(|e| LayoutError::Io(e.to_string()))?
    {
        out.push(parsed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "id,name,phone,mobile,tz,note\n\
        1,Ann,(202) 555-0101,,America/New_York,vip\n\
        2,Bob,not-a-number,,,\n\
        3,Cid,,,,\n\
        4,Dee,+44 20 7946 0958,,Mars/Olympus,\n\
        5,\"Eve,+12025550105,,,\n\
        6,Fay,2025550106,,\n\
        7,\"Gus, Jr.\",202-555-0107,+1 202 555 0108,,\"said \"\"hi\"\"\"\n";

    #[test]
    fn good_rows_import_and_bad_rows_say_why_with_their_line() {
        let parsed = parse_all(LIST.as_bytes(), &ImportMapping::default(), "US").unwrap();
        let mut rows = Vec::new();
        let mut rejected = Vec::new();
        for p in parsed {
            match p {
                Parsed::Row(r) => rows.push(r),
                Parsed::Rejected(r) => rejected.push(r),
            }
        }
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].phones,
            vec![(PhoneKind::Other, "+12025550101".to_string())]
        );
        assert_eq!(rows[0].time_zones, "America/New_York");
        assert_eq!(rows[0].custom_json, r#"{"note":"vip"}"#);
        assert_eq!(rows[1].name, "Gus, Jr.");
        assert_eq!(rows[1].phones.len(), 2);
        assert_eq!(
            rows[1].phones[1],
            (PhoneKind::Mobile, "+12025550108".to_string())
        );
        // Two Washington numbers: Eastern time alone (their area code's).
        assert_eq!(rows[1].time_zones, "America/New_York");
        assert_eq!(rows[1].custom_json, r#"{"note":"said \"hi\""}"#);
        let lines: Vec<u64> = rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7]);
        assert!(rejected[0].reason.contains("not a valid phone number"));
        assert!(rejected[1].reason.contains("no phone number"));
        assert!(rejected[2].reason.contains("unknown time zone"));
        assert!(rejected[3].reason.contains("broken quoting"));
        assert!(rejected[4].reason.contains("expected 6 fields"));
    }

    #[test]
    fn a_contact_without_a_zone_gets_the_zones_of_all_its_numbers() {
        let list = "id,name,phone,mobile\n\
            1,Ann,212 555 0101,\n\
            2,Bob,212 555 0102,415 555 0102\n\
            3,Cid,+7 423 222 0000,\n\
            4,Dee,208 555 0104,\n";
        let zones: Vec<String> = parse_all(list.as_bytes(), &ImportMapping::default(), "US")
            .unwrap()
            .into_iter()
            .map(|parsed| match parsed {
                Parsed::Row(row) => row.time_zones,
                Parsed::Rejected(rejected) => panic!("{rejected:?}"),
            })
            .collect();
        assert_eq!(zones[0], "America/New_York");
        // New York and San Francisco: called only while open in both.
        assert_eq!(zones[1], "America/Los_Angeles America/New_York");
        // Vladivostok's number: every Russian zone, not Moscow's alone.
        assert!(zones[2].contains("Asia/Vladivostok") && zones[2].contains("Europe/Moscow"));
        assert_eq!(zones[3], "America/Boise America/Denver America/Los_Angeles");
    }

    #[test]
    fn a_mapping_names_the_columns() {
        let mapping = ImportMapping::parse(
            "external_id = \"ref\"\nname = \"who\"\n[[phone]]\ncolumn = \"tel\"\nkind = \"mobile\"\n",
        )
        .unwrap();
        let parsed = parse_all(b"ref,who,tel\r\nA1,Zed,020 7946 0958\r\n", &mapping, "GB").unwrap();
        match &parsed[0] {
            Parsed::Row(row) => {
                assert_eq!(row.external_id, "A1");
                assert_eq!(
                    row.phones,
                    vec![(PhoneKind::Mobile, "+442079460958".into())]
                );
                assert_eq!(row.time_zones, "Europe/London");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_all(b"id,name\n", &ImportMapping::default(), "US").unwrap_err(),
            LayoutError::NoPhoneColumn
        );
    }
}
