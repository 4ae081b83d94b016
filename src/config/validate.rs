//! Semantic checks that types alone cannot express. Each returns every
//! problem, not just the first, so one run of `check-config` shows them all.

use std::collections::HashSet;

use super::{CampaignConfig, Config, DialMode, Problem, Role, SpanIndex};

/// Abandonment targets above 20 % are never lawful and almost surely a typo
/// (`3` meant as 3 %).
const MAX_ABANDON_TARGET: f64 = 0.2;
/// FTC TSR and Ofcom: an unanswered call must ring at least 15 s.
const MIN_RING_TIMEOUT_S: u64 = 15;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

struct Checker<'a> {
    index: &'a SpanIndex,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        self.problems.push(Problem {
            position: self.index.position_of_nearest(&key),
            key,
            message: message.into(),
        });
    }
}

pub(super) fn validate(config: &Config, index: &SpanIndex) -> Vec<Problem> {
    let mut check = Checker {
        index,
        problems: Vec::new(),
    };
    check_sip(config, &mut check);
    check_rtp(config, &mut check);
    for (key, message) in config.media.problems() {
        check.report(key, message);
    }
    check_trunk(config, &mut check);
    check_api(config, &mut check);
    check_store(config, &mut check);
    check_log(config, &mut check);
    check_campaigns(config, &mut check);
    check_agents(config, &mut check);
    check_agent_states(config, &mut check);
    check.problems
}

fn check_sip(config: &Config, check: &mut Checker<'_>) {
    let sip = &config.sip;
    if sip.transports.is_empty() {
        check.report(
            "sip.transports",
            "list at least one transport: \"udp\", \"tcp\"",
        );
    }
    if sip.t1_ms == 0 || sip.t1_ms > sip.t2_ms {
        check.report(
            "sip.t1_ms",
            format!("T1 must be > 0 and ≤ T2 ({} ms)", sip.t2_ms),
        );
    }
    if sip.t4_ms == 0 {
        check.report("sip.t4_ms", "T4 must be > 0");
    }
    if sip.user_agent.trim().is_empty() {
        check.report("sip.user_agent", "must not be empty");
    }
}

fn check_rtp(config: &Config, check: &mut Checker<'_>) {
    let rtp = &config.rtp;
    if rtp.port_min < 1024 {
        check.report(
            "rtp.port_min",
            format!("{} is a privileged port; use 1024 or above", rtp.port_min),
        );
    }
    if !rtp.port_min.is_multiple_of(2) {
        check.report(
            "rtp.port_min",
            "must be even (RTP uses even ports, RTCP the odd one above)",
        );
    }
    if rtp.port_max <= rtp.port_min {
        check.report(
            "rtp.port_max",
            format!("must be above port_min ({})", rtp.port_min),
        );
        return;
    }
    // Every concurrent customer call and every agent's reservation leg takes
    // one RTP/RTCP port pair.
    let needed = config.trunk.max_concurrent_calls as usize + config.agents.len();
    if rtp.leg_capacity() < needed {
        check.report(
            "rtp.port_max",
            format!(
                "the range {}-{} holds {} media legs but up to {} are needed \
                 ({} concurrent calls + {} agents, 2 ports each); widen the range",
                rtp.port_min,
                rtp.port_max,
                rtp.leg_capacity(),
                needed,
                config.trunk.max_concurrent_calls,
                config.agents.len()
            ),
        );
    }
}

fn is_sip_uri(text: &str) -> bool {
    let rest = text
        .strip_prefix("sip:")
        .or_else(|| text.strip_prefix("sips:"));
    match rest {
        Some(rest) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let host = host.split([';', '?']).next().unwrap_or_default();
            !host.is_empty() && !host.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn is_e164(text: &str) -> bool {
    let digits = text.strip_prefix('+').unwrap_or(text);
    (3..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn check_trunk(config: &Config, check: &mut Checker<'_>) {
    let trunk = &config.trunk;
    if !is_sip_uri(&trunk.uri) {
        check.report(
            "trunk.uri",
            format!(
                "`{}` is not a SIP URI; expected e.g. sip:carrier.example.net:5060",
                trunk.uri
            ),
        );
    }
    if let Some(proxy) = &trunk.outbound_proxy
        && !is_sip_uri(proxy)
    {
        check.report(
            "trunk.outbound_proxy",
            format!("`{proxy}` is not a SIP URI"),
        );
    }
    if !is_e164(&trunk.caller_id) {
        check.report(
            "trunk.caller_id",
            format!(
                "`{}` is not a phone number; expected E.164 like +15551230000",
                trunk.caller_id
            ),
        );
    }
    if trunk.max_concurrent_calls == 0 {
        check.report("trunk.max_concurrent_calls", "must be at least 1");
    }
    if !(trunk.max_calls_per_second > 0.0 && trunk.max_calls_per_second.is_finite()) {
        check.report("trunk.max_calls_per_second", "must be a number above 0");
    }
    if trunk.password.is_some() && trunk.username.is_none() {
        check.report("trunk.password", "a password needs a `username`");
    }
    if trunk.register && trunk.username.is_none() {
        check.report(
            "trunk.register",
            "registering needs a `username` (the address of record's user)",
        );
    }
    if !(60..=86_400).contains(&trunk.register_expires_s) {
        check.report(
            "trunk.register_expires_s",
            "must be from 60 to 86400 seconds",
        );
    }
    if trunk.session_expires_s != 0 && !(90..=86_400).contains(&trunk.session_expires_s) {
        check.report(
            "trunk.session_expires_s",
            "must be 0 (not asked) or from 90 (RFC 4028's floor) to 86400 seconds",
        );
    }
}

fn check_api(config: &Config, check: &mut Checker<'_>) {
    let agent_ids: HashSet<&str> = config.agents.iter().map(|a| a.id.as_str()).collect();
    for (i, token) in config.api.tokens.iter().enumerate() {
        let key = format!("api.token[{i}]");
        match (&token.token, &token.token_env) {
            (Some(_), Some(_)) => check.report(&key, "give `token` or `token_env`, not both"),
            (None, None) => check.report(&key, "give `token` or `token_env`"),
            (Some(text), None) if text.len() < 8 => {
                check.report(format!("{key}.token"), "use at least 8 characters")
            }
            (None, Some(var)) if token.secret.is_none() => check.report(
                format!("{key}.token_env"),
                format!("environment variable `{var}` is not set"),
            ),
            _ => {}
        }
        match (&token.role, &token.agent) {
            (Role::Agent, None) => check.report(
                format!("{key}.role"),
                "an agent token must name its `agent` id",
            ),
            (Role::Agent, Some(agent)) if !agent_ids.contains(agent.as_str()) => check.report(
                format!("{key}.agent"),
                format!("no [[agent]] has id `{agent}`"),
            ),
            (Role::Supervisor, Some(_)) => check.report(
                format!("{key}.agent"),
                "a supervisor token acts for no single agent; remove `agent`",
            ),
            _ => {}
        }
    }
}

fn check_store(config: &Config, check: &mut Checker<'_>) {
    let url = &config.store.url;
    let ok = match url.split_once("://") {
        Some(("sqlite", path)) => !path.is_empty(),
        Some(("postgres" | "postgresql", rest)) => !rest.is_empty(),
        _ => false,
    };
    if !ok {
        check.report(
            "store.url",
            format!(
                "`{url}` is not a store URL; expected sqlite://FILE or postgres://USER@HOST/DB"
            ),
        );
    }
}

fn check_log(config: &Config, check: &mut Checker<'_>) {
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        check.report(
            "log.level",
            format!("`{}` is not a log filter: {error}", config.log.level),
        );
    }
}

/// Parses `HH:MM-HH:MM` into minutes after midnight.
pub fn parse_call_hours(text: &str) -> Option<(u16, u16)> {
    let (start, end) = text.split_once('-')?;
    let minutes = |hhmm: &str| -> Option<u16> {
        let (h, m) = hhmm.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let (start, end) = (minutes(start)?, minutes(end)?);
    (start < end).then_some((start, end))
}

fn check_campaigns(config: &Config, check: &mut Checker<'_>) {
    let mut names = HashSet::new();
    for (i, campaign) in config.campaigns.iter().enumerate() {
        let key = format!("campaign[{i}]");
        if !campaign.name.trim().is_empty() && !names.insert(campaign.name.as_str()) {
            check.report(
                format!("{key}.name"),
                format!("campaign `{}` is defined twice", campaign.name),
            );
        }
        for (field, message) in campaign_problems(campaign) {
            check.report(format!("{key}.{field}"), message);
        }
    }
}

/// The repeat-call rule's windows are hours to days; beyond a month it is
/// a unit mistake (milliseconds), which would tie agents to the list.
const MAX_REPEAT_CALL_WINDOW_S: u64 = 30 * 24 * 3600;

/// What is wrong with one campaign's settings, as (key within the
/// campaign, message) pairs: the checks of `[[campaign]]` in the file, and
/// of a campaign a supervisor defines through the API.
pub fn campaign_problems(campaign: &CampaignConfig) -> Vec<(String, String)> {
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut report = |field: &str, message: String| problems.push((field.to_string(), message));
    if campaign.name.trim().is_empty() {
        report("name", "must not be empty".into());
    }
    if !(campaign.abandon_target > 0.0 && campaign.abandon_target <= MAX_ABANDON_TARGET) {
        report(
            "abandon_target",
            format!(
                "{} is out of range; give a fraction between 0 and {MAX_ABANDON_TARGET} \
                     (0.03 means 3 %)",
                campaign.abandon_target
            ),
        );
    }
    if let Err(message) = crate::pacing::check_amd_fp_estimate(campaign.amd_fp_estimate) {
        report("amd_fp_estimate", message);
    }
    if campaign.mode == DialMode::Progressive
        && !(campaign.lines_per_agent >= 1.0 && campaign.lines_per_agent <= 10.0)
    {
        report(
            "lines_per_agent",
            "progressive dialing needs between 1 and 10 lines per agent".into(),
        );
    }
    if campaign.preview_variant != super::PreviewVariant::Direct && !campaign.mode.is_preview() {
        report(
            "preview_variant",
            format!(
                "applies to the preview modes only (this campaign is {})",
                campaign.mode
            ),
        );
    }
    if !(campaign.agent_share_weight > 0.0 && campaign.agent_share_weight <= 100.0) {
        report(
            "agent_share_weight",
            format!(
                "{} is not a weight: shared agents are divided in proportion to weights \
                 above 0 and at most 100",
                campaign.agent_share_weight
            ),
        );
    }
    if campaign.agent_reserved_at_dial {
        if campaign.mode != DialMode::Progressive {
            report(
                "agent_reserved_at_dial",
                format!(
                    "needs mode = \"progressive\" (a {} campaign {})",
                    campaign.mode,
                    if campaign.mode.is_preview() {
                        "already dials with its agent"
                    } else {
                        "dials before agents are free"
                    }
                ),
            );
        } else if campaign.lines_per_agent != 1.0 {
            report(
                "agent_reserved_at_dial",
                "each call has its agent reserved from the dial: lines_per_agent must be 1".into(),
            );
        }
    }
    if campaign.ring_timeout_s < MIN_RING_TIMEOUT_S {
        report(
            "ring_timeout_s",
            format!(
                "{} s is too short: regulators (FTC TSR, Ofcom) require at least \
                     {MIN_RING_TIMEOUT_S} s of ringing",
                campaign.ring_timeout_s
            ),
        );
    }
    for problem in campaign.cpa.validate() {
        report("cpa", problem.to_string());
    }
    if parse_call_hours(&campaign.call_hours).is_none() {
        report(
            "call_hours",
            format!(
                "`{}` is not a window; expected HH:MM-HH:MM like 08:00-21:00",
                campaign.call_hours
            ),
        );
    }
    if campaign.call_days.is_empty() {
        report("call_days", "list at least one day".into());
    }
    for day in &campaign.call_days {
        if !DAYS.contains(&day.as_str()) {
            report(
                "call_days",
                format!("`{day}` is not a day; use {}", DAYS.join(", ")),
            );
        }
    }
    let region = &campaign.default_region;
    if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()) {
        report(
            "default_region",
            format!("`{region}` is not an ISO 3166 country code like US or GB"),
        );
    }
    if let Some(caller_id) = &campaign.caller_id
        && !is_e164(caller_id)
    {
        report("caller_id", format!("`{caller_id}` is not an E.164 number"));
    }
    for caller_id in campaign.caller_ids.iter().filter(|c| !is_e164(c)) {
        report(
            "caller_ids",
            format!("`{caller_id}` is not an E.164 number"),
        );
    }
    for (at, transfer) in campaign.outside_transfers.iter().enumerate() {
        if transfer.name.trim().is_empty() || transfer.name.chars().count() > 64 {
            report(
                "outside_transfer",
                format!("entry {}: a name of 1 to 64 characters is needed", at + 1),
            );
        }
        if !is_e164(&transfer.number) || !transfer.number.starts_with('+') {
            report(
                "outside_transfer",
                format!(
                    "`{}`: `{}` is not an E.164 number (+ and the country code)",
                    transfer.name, transfer.number
                ),
            );
        }
        if campaign.outside_transfers[..at]
            .iter()
            .any(|earlier| earlier.name == transfer.name)
        {
            report(
                "outside_transfer",
                format!("`{}` is named twice", transfer.name),
            );
        }
    }
    if campaign.local_presence && campaign.caller_ids.is_empty() {
        report(
            "local_presence",
            "needs `caller_ids`: the numbers to pick the nearest from".into(),
        );
    }
    if campaign.max_attempts == 0 {
        report("max_attempts", "must be at least 1".into());
    }
    if campaign.max_attempts_per_day == Some(0) {
        report(
            "max_attempts_per_day",
            "must be at least 1 (leave it out for no daily limit)".into(),
        );
    }
    if campaign.max_attempts_per_number == 0 {
        report("max_attempts_per_number", "must be at least 1".into());
    }
    for problem in crate::campaign::guide::problems(&campaign.guide) {
        report("guide", problem);
    }
    for problem in crate::campaign::model::disposition_problems(&campaign.dispositions) {
        report("disposition", problem);
    }
    if campaign.wrap_up_timeout_s == Some(0) {
        report(
            "wrap_up_timeout_s",
            "must be at least 1 (leave it out for no wrap-up timer)".into(),
        );
    }
    if campaign.preview_timeout_s == Some(0) {
        report(
            "preview_timeout_s",
            "must be at least 1 (leave it out for the default)".into(),
        );
    }
    let repeat = campaign.repeat_calls;
    for (field, seconds) in [
        ("agent_after_abandoned_s", repeat.agent_after_abandoned_s),
        ("agent_after_machine_s", repeat.agent_after_machine_s),
    ] {
        if seconds > MAX_REPEAT_CALL_WINDOW_S {
            report(
                "repeat_calls",
                format!(
                    "{field} = {seconds} is over 30 days; it is in seconds \
                     (Ofcom: 259200 after an abandoned call, 86400 after a machine)"
                ),
            );
        }
    }
    if campaign.machine_action == super::MachineAction::LeaveMessage
        && campaign.voicemail_prompt.is_none()
    {
        report(
            "voicemail_prompt",
            "machine_action = \"leave_message\" needs a voicemail_prompt WAV".into(),
        );
    }
    problems
}

fn check_agents(config: &Config, check: &mut Checker<'_>) {
    let campaigns: HashSet<&str> = config.campaigns.iter().map(|c| c.name.as_str()).collect();
    let mut ids = HashSet::new();
    for (i, agent) in config.agents.iter().enumerate() {
        let key = format!("agent[{i}]");
        if agent.id.trim().is_empty() {
            check.report(format!("{key}.id"), "must not be empty");
        } else if agent
            .id
            .starts_with(&crate::engine::attempt::outside_party(""))
        {
            // The dialer names a call's outside line so (see
            // `engine::outside_transfer`).
            check.report(
                format!("{key}.id"),
                format!(
                    "agent id `{}`: ids starting with `{}` are reserved for outside lines",
                    agent.id,
                    crate::engine::attempt::outside_party("")
                ),
            );
        } else if !ids.insert(agent.id.as_str()) {
            check.report(
                format!("{key}.id"),
                format!("agent id `{}` is used twice; ids must be unique", agent.id),
            );
        }
        if let Some(uri) = &agent.sip_uri
            && !is_sip_uri(uri)
        {
            check.report(
                format!("{key}.sip_uri"),
                format!("`{uri}` is not a SIP URI; expected e.g. sip:1001@192.0.2.10:5060"),
            );
        }
        if let Some(simulated) = &agent.simulated {
            if simulated.disposition.trim().is_empty() {
                check.report(
                    format!("{key}.simulated.disposition"),
                    "a simulated agent needs a disposition code",
                );
            }
            // Its code must be one every campaign of the agent accepts, or
            // its calls could not be written.
            for campaign in config
                .campaigns
                .iter()
                .filter(|c| agent.campaigns.contains(&c.name))
            {
                let codes = crate::campaign::model::agent_dispositions(&campaign.dispositions);
                if !simulated.disposition.trim().is_empty()
                    && !codes.iter().any(|d| d.code == simulated.disposition)
                {
                    check.report(
                        format!("{key}.simulated.disposition"),
                        format!(
                            "`{}` is not a disposition of campaign `{}` ({})",
                            simulated.disposition,
                            campaign.name,
                            codes
                                .iter()
                                .map(|d| d.code.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
        if agent.connection == super::AgentConnection::PerCall && !agent.has_phone() {
            check.report(
                format!("{key}.connection"),
                "`per_call` needs a phone to ring: `sip_uri`, a registration `password` or \
                 `browser_phone`",
            );
        }
        if agent.browser_phone && agent.simulated.is_some() {
            check.report(
                format!("{key}.browser_phone"),
                "a simulated agent (load tests) has no phone: drop `browser_phone` or `simulated`",
            );
        }
        if !agent.has_phone() && agent.simulated.is_none() {
            check.report(
                key.clone(),
                format!(
                    "agent `{}` can be reached neither by `sip_uri` nor by registration \
                     (`password` or {}) nor in the web desktop (`browser_phone = true`)",
                    agent.id,
                    super::Secrets::agent_password_var(&agent.id)
                ),
            );
        }
        for campaign in &agent.campaigns {
            if !campaigns.contains(campaign.as_str()) {
                check.report(
                    format!("{key}.campaigns"),
                    format!("no [[campaign]] is named `{campaign}`"),
                );
            }
        }
    }
}

/// Longest Not-ready reason (shown on desktops and dashboards).
const MAX_REASON_LEN: usize = 40;

fn check_agent_states(config: &Config, check: &mut Checker<'_>) {
    let mut seen = HashSet::new();
    for reason in &config.agent_states.not_ready_reasons {
        if reason.trim().is_empty() || reason.chars().count() > MAX_REASON_LEN {
            check.report(
                "agent_states.not_ready_reasons",
                format!("`{reason}`: give 1 to {MAX_REASON_LEN} characters"),
            );
        } else if !seen.insert(reason.as_str()) {
            check.report(
                "agent_states.not_ready_reasons",
                format!("`{reason}` is listed twice"),
            );
        }
    }
}
