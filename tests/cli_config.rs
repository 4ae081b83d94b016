//! `outdial check-config` against good and broken files, through the binary.

mod support;

use support::{DEFAULT_CONFIG, outdial, write_config};

fn check(text: &str) -> (i32, String, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), text);
    let output = outdial()
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("run outdial");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        path,
    )
}

fn line_of(text: &str, starts_with: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(starts_with))
        .expect("line present")
        + 1
}

#[test]
fn shipped_config_passes_with_a_summary() {
    let output = outdial()
        .args(["check-config", "--config", "config/outdial.toml"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("config/outdial.toml: ok"), "{stdout}");
    assert!(
        stdout.contains("sip      listen 127.0.0.1:5060"),
        "{stdout}"
    );
    assert!(stdout.contains("demo"), "{stdout}");
    // Valid, but the demo has no abandon message: warned, not refused.
    assert!(
        stdout.contains("warning: campaign `demo`: no `abandon_prompt`"),
        "{stdout}"
    );
}

#[test]
fn settings_against_the_rules_are_warned_not_refused() {
    let text = DEFAULT_CONFIG
        .replace("abandon_target = 0.03", "abandon_target = 0.05")
        .replace(
            "call_hours = \"08:00-21:00\"",
            "call_hours = \"07:00-22:00\"",
        );
    assert_ne!(text, DEFAULT_CONFIG);
    let (code, stdout, _, _) = check(&text);
    assert_eq!(code, 0, "{stdout}");
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{stdout}");
    assert!(warnings[1].contains("5.0 % is above the 3 %"), "{stdout}");
    assert!(warnings[2].contains("07:00-22:00"), "{stdout}");
}

#[test]
fn a_prompt_run_could_not_load_is_an_error() {
    // `run` loads every campaign's audio at start and stops on one it
    // cannot read: check-config says so first. A readable WAV passes.
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("hold.wav");
    let mut file = std::fs::File::create(&wav).unwrap();
    outdial::media::wav::write_pcm16(&mut file, 8000, 1, &[0i16; 800]).unwrap();
    let campaign = "[[campaign]]\nname = \"demo\"";
    assert!(DEFAULT_CONFIG.contains(campaign));
    let with = |lines: &str| DEFAULT_CONFIG.replacen(campaign, &format!("{campaign}\n{lines}"), 1);
    let (code, stdout, stderr, _) = check(&with(&format!("hold_music = \"{}\"", wav.display())));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let missing = dir.path().join("nowhere.wav");
    let (code, _, stderr, _) = check(&with(&format!(
        "hold_music = \"{}\"\nabandon_prompt = \"{}\"",
        wav.display(),
        missing.display()
    )));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("campaign `demo`: `abandon_prompt`: cannot read")
            && stderr.contains("nowhere.wav"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hold_music"),
        "the good one passes: {stderr}"
    );
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = DEFAULT_CONFIG.replace("max_calls_per_second = 10", "max_calls_per_sec = 10");
    let (code, _, stderr, path) = check(&text);
    assert_eq!(code, 2);
    let line = line_of(DEFAULT_CONFIG, "max_calls_per_second");
    assert!(
        stderr.contains(&format!("{}:{line}:1", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("`trunk.max_calls_per_sec`"), "{stderr}");
    assert!(
        stderr.contains("did you mean `max_calls_per_second`"),
        "{stderr}"
    );
}

#[test]
fn bad_port_names_file_line_and_key() {
    let text = DEFAULT_CONFIG.replace("port_max = 21999", "port_max = 70000");
    let (code, _, stderr, path) = check(&text);
    assert_eq!(code, 2);
    let line = line_of(DEFAULT_CONFIG, "port_max");
    assert!(
        stderr.contains(&format!("{}:{line}:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("`rtp.port_max`"), "{stderr}");
    assert!(stderr.contains("70000"), "{stderr}");
}

#[test]
fn broken_toml_names_file_line_and_key() {
    let text = DEFAULT_CONFIG.replace("caller_id = \"+15551230000\"", "caller_id = \"+1555");
    let (code, _, stderr, path) = check(&text);
    assert_eq!(code, 2);
    let line = line_of(DEFAULT_CONFIG, "caller_id = \"+15551230000\"");
    assert!(
        stderr.contains(&format!("{}:{line}:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("`caller_id`"), "{stderr}");
    assert!(stderr.contains("invalid TOML"), "{stderr}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let output = outdial()
        .args(["check-config", "--config", "/nonexistent/outdial.toml"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/outdial.toml"), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
}
