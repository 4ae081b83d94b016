//! `outdial simulate` end to end through the real binary (shortened runs).

mod support;

use std::fmt::Write as _;

use serde_json::Value;
use support::outdial;

fn json(args: &[&str]) -> Value {
    let output = outdial()
        .arg("simulate")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A deterministic stream: every 3rd dial a human, the rest machines/busy/no answer.
fn stream(rows: usize) -> String {
    let mut text = String::from("attempt,class,ring_s,talk_s,wrap_s\n");
    for i in 0..rows {
        let (class, ring) = match i % 6 {
            0 | 3 => ("human", 4.0 + (i % 7) as f64),
            1 => ("machine", 18.0),
            2 => ("busy", 3.0),
            4 if i % 12 == 4 => ("amd_fp", 16.0),
            _ => ("noanswer", 25.0),
        };
        writeln!(
            text,
            "{i},{class},{ring},{},{}",
            60 + (i * 37) % 200,
            5 + i % 10
        )
        .unwrap();
    }
    text
}

#[test]
fn scenario_json_has_the_metrics_per_policy_and_seed() {
    let out = json(&[
        "--scenario",
        "scenarios/grid/n020-ph30.toml",
        "--hours",
        "1",
        "--seeds",
        "1,2",
        "--policy",
        "predictive,progressive,ratio:2",
    ]);
    let rows = out.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for row in rows {
        for key in [
            "policy",
            "talk_occupancy",
            "handle_occupancy",
            "abandon_rate",
            "abandon_rate_uk",
            "amd_false_positives",
            "connected_per_agent_hour",
            "dials_per_agent",
            "mean_lines_per_agent",
            "agent_wait_mean_s",
            "agent_wait_p95_s",
            "answer_to_agent_mean_s",
            "answer_to_agent_p95_s",
        ] {
            assert!(row.get(key).is_some(), "missing {key} in {row}");
        }
        let talk = row["talk_occupancy"].as_f64().unwrap();
        let handle = row["handle_occupancy"].as_f64().unwrap();
        assert!(talk > 0.2 && talk <= handle && handle <= 1.0, "{row}");
    }
    let progressive = &rows[1];
    assert_eq!(progressive["policy"], "progressive");
    assert_eq!(progressive["abandon_rate"].as_f64().unwrap(), 0.0);
    // Predictive beats progressive on the same draws.
    assert!(rows[0]["talk_occupancy"].as_f64() > progressive["talk_occupancy"].as_f64());
}

#[test]
fn same_seed_gives_the_same_report() {
    let args = [
        "--scenario",
        "scenarios/grid/n005-ph30.toml",
        "--hours",
        "1",
        "--seeds",
        "4",
    ];
    assert_eq!(json(&args), json(&args));
}

#[test]
fn stream_replay_with_agent_events() {
    let dir = tempfile::tempdir().unwrap();
    let stream_path = dir.path().join("stream.csv");
    std::fs::write(&stream_path, stream(20_000)).unwrap();
    let events_path = dir.path().join("agents.csv");
    std::fs::write(
        &events_path,
        "agent,t_s,event\n1,0,login\n2,0,login\n3,600,login\n1,900,pause\n1,1500,resume\n2,2400,logout\n",
    )
    .unwrap();
    let out = json(&[
        "--stream",
        stream_path.to_str().unwrap(),
        "--agent-events",
        events_path.to_str().unwrap(),
        "--agents",
        "3",
        "--hours",
        "1",
        "--trunk-lines-per-agent",
        "3",
        "--amd-fp-estimate",
        "0.02",
        "--policy",
        "progressive,predictive",
    ]);
    let rows = out.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let progressive = &rows[0];
    assert_eq!(progressive["abandoned"].as_u64(), Some(0));
    assert!(progressive["amd_false_positives"].as_u64().unwrap() > 0);
    let fp = progressive["amd_false_positives"].as_f64().unwrap();
    let live = progressive["live_answers"].as_f64().unwrap();
    let uk = progressive["abandon_rate_uk"].as_f64().unwrap();
    assert!((uk - fp / (live + fp)).abs() < 1e-9);
}

#[test]
fn a_short_stream_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.csv");
    std::fs::write(&path, stream(50)).unwrap();
    let output = outdial()
        .args([
            "simulate",
            "--stream",
            path.to_str().unwrap(),
            "--agents",
            "5",
            "--hours",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ran out after 50 rows"), "{stderr}");
}

#[test]
fn bad_inputs_are_reported_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.csv");
    std::fs::write(
        &path,
        "attempt,class,ring_s,talk_s,wrap_s\n0,human,3,60,5\n1,robot,3,0,0\n",
    )
    .unwrap();
    let output = outdial()
        .args([
            "simulate",
            "--stream",
            path.to_str().unwrap(),
            "--agents",
            "5",
            "--hours",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("stream line 3") && stderr.contains("robot"),
        "{stderr}"
    );

    let output = outdial()
        .args([
            "simulate",
            "--scenario",
            "scenarios/grid/n005-ph10.toml",
            "--policy",
            "greedy",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("policy \"greedy\""));
}

#[test]
fn grid_prints_the_table_with_reference_figures() {
    let output = outdial()
        .args([
            "simulate",
            "--grid",
            "scenarios/grid",
            "--hours",
            "0.5",
            "--seeds",
            "1",
            "--policy",
            "progressive",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(table.lines().count(), 10, "{table}");
    assert!(
        table.contains("n100-ph60") && table.contains("89.8") && table.contains("91.2"),
        "{table}"
    );
}
