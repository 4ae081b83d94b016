//! The shell scripts that run a SIPp carrier from a scenario template
//! (`scripts/try-it`, the README's one-command demo, and
//! `scripts/load/campaign`) must fill in every placeholder the template
//! has: SIPp refuses a scenario with one left ("is not a floating point
//! number") and the carrier never answers. A placeholder added to
//! `carrier_router.xml` for the tests (`HUMAN_RING_MS`, session 26) left
//! both scripts broken until session 32.

use std::collections::BTreeSet;

/// The template's placeholders: the capitalised words ending in `_MS`,
/// and `AUDIO_DIR`.
fn placeholders(template: &str) -> BTreeSet<String> {
    template
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .filter(|word| word.len() > 3 && (word.ends_with("_MS") || *word == "AUDIO_DIR"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_scripts_fill_in_every_placeholder_of_the_carrier_template() {
    let template = std::fs::read_to_string("tests/sipp/carrier_router.xml").unwrap();
    let wanted = placeholders(&template);
    assert!(
        wanted.contains("TALK_MS") && wanted.contains("AUDIO_DIR"),
        "{wanted:?}"
    );
    for script in ["scripts/try-it", "scripts/load/campaign"] {
        let text = std::fs::read_to_string(script).unwrap();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|name| !text.contains(&format!("s|{name}|")))
            .collect();
        assert!(
            missing.is_empty(),
            "{script} leaves {missing:?} in the scenario"
        );
    }
}
