//! Any bytes as a campaign definition (`POST /api/campaigns`) and a merge
//! patch (`PATCH /api/campaigns/{name}`), both JSON: parsing, the checks,
//! the patch and the stored form's round trip return, never panic.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use outdial::config::definition::CampaignDefinition;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The definition, then a line "---", then the patch.
    let (definition, patch) = text.split_once("\n---\n").unwrap_or((text, "{}"));
    let Ok(definition) = serde_json::from_str::<serde_json::Value>(definition) else {
        return;
    };
    let agents: BTreeSet<String> = ["1001".to_string(), "a".to_string()].into();
    let Ok(parsed) = CampaignDefinition::from_json(&definition, &agents) else {
        return;
    };
    // What is stored reads back as valid.
    assert!(CampaignDefinition::from_json(&parsed.to_json(), &agents).is_ok());
    if let Ok(patch) = serde_json::from_str::<serde_json::Value>(patch) {
        let _ = parsed.patched(&patch, &agents);
    }
});
