//! `outdial callbacks`: pending callbacks listed, moved and cancelled from
//! the command line, with clear errors and exit codes for bad input.

mod support;

use jiff::{SignedDuration, Timestamp};
use outdial::store::{self, Store};
use support::{ephemeral_config, outdial_output, schedule_callback, write_config};

#[test]
fn callbacks_are_listed_moved_and_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let list = dir.path().join("list.csv");
    std::fs::write(
        &list,
        "id,name,phone\na,Ann Lee,+12025550101\nb,Bob Ray,+12025550102\n",
    )
    .unwrap();
    let list_arg = list.to_str().unwrap();
    let (code, out) = outdial_output(
        &config,
        &["import", "--campaign", "demo", "--file", list_arg],
    );
    assert_eq!(code, 0, "{out}");
    let store: Box<dyn Store> =
        store::open(&format!("sqlite://{}/outdial.db", dir.path().display())).unwrap();
    let campaign = store.campaign_id("demo").unwrap().unwrap();
    let now = Timestamp::now();
    let schedule = |id: &str, hours, agent| schedule_callback(&*store, campaign, id, hours, agent);
    let ann = schedule("a", 2, Some("1001"));
    let bob = schedule("b", 1, None);

    let (code, out) = outdial_output(&config, &["callbacks", "list"]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains('\t')).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("{bob}\t")),
        "soonest first: {out}"
    );
    assert!(
        lines[1].contains("Ann Lee") && lines[1].ends_with("\t1001"),
        "{out}"
    );
    let (_, out) = outdial_output(&config, &["callbacks", "list", "--agent", "1001"]);
    assert!(out.contains("1 pending callback(s)"), "{out}");

    // Moved a day later, to another number, for agent 1002.
    let at = (now + SignedDuration::from_hours(26)).to_string();
    let ann_arg = ann.to_string();
    let (code, out) = outdial_output(
        &config,
        &[
            "callbacks",
            "change",
            &ann_arg,
            "--at",
            &at,
            "--phone",
            "(202) 555-0177",
            "--agent",
            "1002",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (_, out) = outdial_output(&config, &["callbacks", "list", "--agent", "1002"]);
    assert!(
        out.contains("+12025550177") && out.contains("Ann Lee"),
        "{out}"
    );

    // Bad input: exit 2, nothing changed.
    let past = (now - SignedDuration::from_mins(5)).to_string();
    for (args, says) in [
        (vec!["callbacks", "change", &ann_arg, "--at", &past], "past"),
        (
            vec!["callbacks", "change", &ann_arg, "--at", "soon"],
            "RFC 3339",
        ),
        (
            vec![
                "callbacks",
                "change",
                &ann_arg,
                "--at",
                &at,
                "--agent",
                "9999",
            ],
            "9999",
        ),
        (
            vec![
                "callbacks",
                "change",
                &ann_arg,
                "--at",
                &at,
                "--phone",
                "555",
            ],
            "--phone",
        ),
        (vec!["callbacks", "list", "--campaign", "nope"], "nope"),
    ] {
        let (code, out) = outdial_output(&config, &args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(out.contains(says), "{args:?}: {out}");
    }

    // Cancelled: gone, the record back on the list; twice is an error.
    let bob_arg = bob.to_string();
    let (code, out) = outdial_output(&config, &["callbacks", "cancel", &bob_arg]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cancelled"), "{out}");
    assert_eq!(store.record(campaign, "b").unwrap().unwrap().state, "new");
    let (code, out) = outdial_output(&config, &["callbacks", "cancel", &bob_arg]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no pending callback"), "{out}");
    let (_, out) = outdial_output(&config, &["callbacks", "list"]);
    assert!(out.contains("1 pending callback(s)"), "{out}");
}
