//! `outdial dnc`: numbers onto and off the internal and campaign
//! do-not-call lists, normalised to E.164, bad ones reported by line.

mod support;

use support::{ephemeral_config, outdial_output, write_config};

fn dnc(config: &std::path::Path, args: &[&str]) -> (i32, String) {
    let mut all = vec!["dnc"];
    all.extend_from_slice(args);
    outdial_output(config, &all)
}

#[test]
fn numbers_go_onto_and_off_the_lists() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    // The internal list: a national number is read as the default region's.
    let (code, out) = dnc(&config, &["add", "+12025550101", "(202) 555-0102", "bogus"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("line 3: `bogus` is not a valid phone number"),
        "{out}"
    );
    assert!(out.contains("added 2 to the internal list"), "{out}");
    let (code, out) = dnc(&config, &["check", "+12025550102", "+12025550199"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("+12025550102 listed"), "{out}");
    assert!(out.contains("+12025550199 not listed"), "{out}");
    // A campaign's list from a file: header and comments skipped.
    let file = dir.path().join("dnc.csv");
    std::fs::write(
        &file,
        "phone,why\n# from the complaints desk\n+442071838750,asked\n2025550103,asked\n",
    )
    .unwrap();
    let (code, out) = dnc(
        &config,
        &[
            "add",
            "--campaign",
            "demo",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("added 2 to campaign `demo`'s list"), "{out}");
    let (code, out) = dnc(
        &config,
        &[
            "check",
            "--campaign",
            "demo",
            "+12025550103",
            "+12025550101",
        ],
    );
    assert_eq!(
        code, 0,
        "the campaign sees its own list and the internal one: {out}"
    );
    let (code, out) = dnc(&config, &["check", "+12025550103"]);
    assert_eq!(
        code, 3,
        "a campaign's number is not on the internal list: {out}"
    );
    // Off again.
    let (code, out) = dnc(&config, &["remove", "+12025550101"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = dnc(&config, &["check", "+12025550101"]);
    assert_eq!(code, 3, "{out}");
    // Misuse: no numbers, an unknown campaign.
    let (code, out) = dnc(&config, &["add"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = dnc(&config, &["add", "--campaign", "nope", "+12025550101"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no campaign `nope`"), "{out}");
}
