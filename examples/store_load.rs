//! Load helper for the campaign store (not part of the product CLI):
//!
//! - `store_load gen ROWS FILE` writes a contact list of ROWS rows (two
//!   numbers each, every 1000th row bad) for `outdial import` timing;
//! - `store_load hopper URL RECORDS BATCH` fills a fresh campaign with
//!   RECORDS records and measures the hopper: leases per second alone, and
//!   full cycles (lease + attempt written + attempt completed) per second.
//!
//! `scripts/load/store.sh` runs both on SQLite and PostgreSQL.

use std::io::Write;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use outdial::campaign::import::ImportRow;
use outdial::campaign::model::{Outcome, PhoneKind};
use outdial::campaign::rules::CampaignRules;
use outdial::campaign::window::CallingWindow;
use outdial::store::{self, AttemptResult, LeaseRequest};

fn gen_list(rows: u64, path: &str) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "id,name,phone,mobile,tz,segment")?;
    for i in 0..rows {
        // 555-01xx are fictional; vary the area code over valid US ones.
        let area = [202, 212, 305, 312, 415, 617, 713, 206][(i % 8) as usize];
        let tz = if i % 3 == 0 { "America/New_York" } else { "" };
        if i % 1000 == 999 {
            writeln!(out, "c{i},Bad Row {i},not-a-number,,{tz},x")?;
        } else {
            writeln!(
                out,
                "c{i},Contact {i},({area}) {:03}-{:04},+1 {area} {:03} {:04},{tz},seg{}",
                200 + (i / 10_000) % 700,
                i % 10_000,
                300 + (i / 10_000) % 600,
                (i * 7) % 10_000,
                i % 5
            )?;
        }
    }
    out.flush()
}

fn hopper(url: &str, records: usize, batch: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = store::open(url)?;
    let mut rules = CampaignRules::with_defaults(&format!("load-{}", std::process::id()));
    rules.window = CallingWindow {
        start_min: 0,
        end_min: 24 * 60,
        days: [true; 7],
    };
    let campaign = store.sync_campaign(&rules)?;
    let now = Timestamp::now();
    let run = store.begin_import(campaign, now)?;
    let rows: Vec<ImportRow> = (0..records)
        .map(|i| ImportRow {
            line: i as u64 + 2,
            external_id: format!("h{i}"),
            name: format!("Contact {i}"),
            time_zones: "America/New_York".into(),
            priority: (i % 3) as i32,
            custom_json: "{}".into(),
            phones: vec![(
                PhoneKind::Home,
                format!("+1{}{:07}", 202 + (i / 10_000_000), i % 10_000_000),
            )],
        })
        .collect();
    for chunk in rows.chunks(1000) {
        store.import_batch(campaign, run, chunk)?;
    }
    let half = records / 2;
    let request = |node| LeaseRequest {
        campaign,
        node,
        agent: None,
        max: batch,
        now,
        lease_for: SignedDuration::from_mins(10),
        personal_only: false,
        skip_agent_required: false,
    };
    // Leases alone (the hopper's own cost).
    let start = Instant::now();
    let mut leased = 0;
    while leased < half {
        let got = store.lease(&request("load-a"))?;
        if got.is_empty() {
            break;
        }
        leased += got.len();
    }
    let lease_rate = leased as f64 / start.elapsed().as_secs_f64();
    // Full cycles: lease, write the attempt, complete it.
    let start = Instant::now();
    let mut cycled = 0;
    while cycled < records - half {
        let got = store.lease(&request("load-b"))?;
        if got.is_empty() {
            break;
        }
        for lease in got {
            let attempt = store.begin_attempt(&lease, now)?;
            store.complete_attempt(attempt, &AttemptResult::new(Outcome::NoAnswer), now)?;
            cycled += 1;
        }
    }
    let cycle_rate = cycled as f64 / start.elapsed().as_secs_f64();
    println!(
        "{{\"backend\": \"{}\", \"records\": {records}, \"batch\": {batch}, \"leases_per_s\": {lease_rate:.0}, \"cycles_per_s\": {cycle_rate:.0}}}",
        url.split("://").next().unwrap_or("?")
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") if args.len() == 4 => Ok(gen_list(args[2].parse()?, &args[3])?),
        Some("hopper") if args.len() == 5 => hopper(&args[2], args[3].parse()?, args[4].parse()?),
        _ => Err("usage: store_load gen ROWS FILE | store_load hopper URL RECORDS BATCH".into()),
    }
}
