//! Any bytes as a call guide (TOML) and the agent's answers (JSON): the
//! guide's checks and the answers' check return, never panic or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outdial::campaign::guide::{GivenAnswer, GuideQuestion, check_answers, problems};

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    guide: Vec<GuideQuestion>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The guide, then a line "---", then the answers.
    let (guide, answers) = text.split_once("\n---\n").unwrap_or((text, "[]"));
    let Ok(file) = toml::from_str::<File>(guide) else {
        return;
    };
    let _ = problems(&file.guide);
    if let Ok(answers) = serde_json::from_str::<Vec<GivenAnswer>>(answers) {
        let _ = check_answers(&file.guide, &answers);
    }
});
