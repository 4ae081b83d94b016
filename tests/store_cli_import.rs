//! `outdial import` and `outdial export` end to end, on both backends: good
//! rows imported, each bad row reported with its line, exit code 3,
//! re-import idempotent, export of records and attempts.

mod store_common;
mod support;

use std::path::Path;

use serde_json::Value;
use store_common::PgDatabase;

const LIST: &str = "id,name,phone,mobile,tz,note\n\
    1,Ann,(202) 555-0101,,America/New_York,vip\n\
    2,Bob,not-a-number,,,\n\
    3,Cid,,,,\n\
    4,Dee,+44 20 7946 0958,,Mars/Olympus,\n\
    5,\"Eve,+12025550105,,,\n\
    6,Fay,2025550106,,\n\
    1,Ann again,2025550109,,,\n\
    \n\
    7,\"Gus, Jr.\",202-555-0107,+1 202 555 0108,,\"said \"\"hi\"\"\"\n";

fn config_for(dir: &Path, url: &str) -> std::path::PathBuf {
    let text = support::DEFAULT_CONFIG
        .replace("url = \"sqlite://outdial.db\"", &format!("url = \"{url}\""));
    support::write_config(dir, &text)
}

fn import(config: &Path, list: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = support::outdial()
        .arg("--config")
        .arg(config)
        .args(["import", "--campaign", "demo", "--file"])
        .arg(list)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import_then_export(url: &str, dir: &Path) {
    let config = config_for(dir, url);
    let list = dir.join("list.csv");
    std::fs::write(&list, LIST).unwrap();

    let (code, stdout, stderr) = import(&config, &list, &["--json"]);
    assert_eq!(code, Some(3), "some rows rejected: {stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["imported"], 2);
    assert_eq!(summary["updated"], 0);
    let rejected = summary["rejected"].as_array().unwrap();
    let lines: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8]);
    let reasons: Vec<&str> = rejected
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    for (reason, expected) in reasons.iter().zip([
        "not a valid phone number",
        "no phone number",
        "unknown time zone",
        "broken quoting",
        "expected 6 fields",
        "duplicate external id",
    ]) {
        assert!(
            reason.contains(expected),
            "{reason:?} should say {expected:?}"
        );
    }

    // Re-import: the same ids update, nothing is duplicated.
    let (code, stdout, _) = import(&config, &list, &[]);
    assert_eq!(code, Some(3));
    assert!(stdout.contains("line 3: column `phone`"), "{stdout}");
    assert!(
        stdout.ends_with("imported 0, updated 2, rejected 6\n"),
        "{stdout}"
    );

    // A clean list exits 0.
    let clean = dir.join("clean.csv");
    std::fs::write(&clean, "id,phone\n8,+12025550110\n").unwrap();
    let (code, stdout, _) = import(&config, &clean, &["--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(stdout.trim(), r#"{"imported":1,"updated":0,"rejected":[]}"#);

    let out = dir.join("records.csv");
    let status = support::outdial()
        .arg("--config")
        .arg(&config)
        .args(["export", "--campaign", "demo", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let exported = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines.len(), 4, "{exported}");
    assert!(lines[0].starts_with("external_id,name,state,attempts,phones"));
    assert!(lines[1].starts_with("1,Ann,new,0,+12025550101,"));
    assert!(lines[2].starts_with("7,\"Gus, Jr.\",new,0,+12025550107;+12025550108,"));

    let cdr = dir.join("attempts.csv");
    let status = support::outdial()
        .arg("--config")
        .arg(&config)
        .args(["export", "--campaign", "demo", "--attempts", "--out"])
        .arg(&cdr)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read_to_string(&cdr)
            .unwrap()
            .starts_with("attempt_id,external_id,phone")
    );

    // Usage errors exit 2.
    let status = support::outdial()
        .arg("--config")
        .arg(&config)
        .args(["import", "--campaign", "nope", "--file"])
        .arg(&list)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let headerless = dir.join("headerless.csv");
    std::fs::write(&headerless, "name,email\nAnn,a@example.com\n").unwrap();
    let (code, _, stderr) = import(&config, &headerless, &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no external id column"), "{stderr}");
}

#[test]
fn import_and_export_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    import_then_export(&url, dir.path());
}

#[test]
fn import_and_export_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    import_then_export(&db.url, dir.path());
}
