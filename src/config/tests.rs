use std::path::Path;

use super::*;

const DEFAULT: &str = include_str!("../../config/outdial.toml");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("outdial.toml"))
}

fn only_problem(text: &str) -> Problem {
    let error = parse(text).expect_err("config should be rejected");
    assert_eq!(error.problems.len(), 1, "{error}");
    error.problems[0].clone()
}

#[test]
fn shipped_default_is_valid() {
    let config = parse(DEFAULT).expect("the shipped config must load");
    assert_eq!(config.sip.listen.port(), 5060);
    assert_eq!(config.api.listen.port(), 8080);
    assert_eq!(config.store.url, "sqlite://outdial.db");
    assert_eq!(config.campaigns.len(), 1);
    assert_eq!(config.agents.len(), 2);
    assert_eq!(config.campaigns[0].abandon_target, 0.03);
}

#[test]
fn unknown_key_names_line_key_and_suggestion() {
    let text = DEFAULT.replace("max_concurrent_calls = 60", "max_concurent_calls = 60");
    let problem = only_problem(&text);
    assert_eq!(problem.key, "trunk.max_concurent_calls");
    let line = DEFAULT
        .lines()
        .position(|l| l.starts_with("max_concurrent_calls"))
        .expect("line")
        + 1;
    assert_eq!(problem.position, Some((line, 1)));
    assert!(
        problem
            .message
            .contains("did you mean `max_concurrent_calls`"),
        "{problem:?}"
    );
}

#[test]
fn bad_port_is_reported_at_its_value() {
    let text = DEFAULT.replace(
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:99999\"",
    );
    let problem = only_problem(&text);
    assert_eq!(problem.key, "api.listen");
    assert!(problem.message.contains("99999"), "{problem:?}");
}

#[test]
fn broken_toml_names_the_line() {
    let text = DEFAULT.replace("[store]", "[store");
    let problem = only_problem(&text);
    assert_eq!(problem.key, "[store");
    let line = DEFAULT.lines().position(|l| l == "[store]").expect("line") + 1;
    assert_eq!(problem.position.map(|p| p.0), Some(line));
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let text = DEFAULT
        .replace("abandon_target = 0.03", "abandon_target = 0.5")
        .replace("ring_timeout_s = 25", "ring_timeout_s = 10")
        .replace("id = \"1002\"", "id = \"1001\"")
        .replace("mode = \"predictive\"", "mode = \"progressive\"")
        .replace("lines_per_agent = 1.0", "lines_per_agent = 0.5")
        .replace("url = \"sqlite://outdial.db\"", "url = \"mysql://x\"");
    let error = parse(&text).expect_err("must fail");
    let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
    for expected in [
        "campaign[0].abandon_target",
        "campaign[0].ring_timeout_s",
        "campaign[0].lines_per_agent",
        "agent[1].id",
        "store.url",
        "api.token[2].agent",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
    assert!(error.problems.iter().all(|p| p.position.is_some()));
}

#[test]
fn rtp_range_must_hold_the_call_limit() {
    let text = DEFAULT.replace("port_max = 21999", "port_max = 20100");
    let problem = only_problem(&text);
    assert_eq!(problem.key, "rtp.port_max");
    assert!(problem.message.contains("62"), "{problem:?}");
}

/// The delay after an abandoned call follows `no_answer_s` unless set (a
/// UK campaign's 72 h): the rules dial an abandoned record again after it.
#[test]
fn the_delay_after_an_abandoned_call_defaults_to_the_no_answer_delay() {
    use crate::campaign::model::Outcome;
    use crate::campaign::rules::CampaignRules;
    let delay = |text: &str| {
        let config = parse(text).expect("valid");
        CampaignRules::from_config(&config.campaigns[0])
            .expect("rules")
            .retry_delay(Outcome::Abandoned)
            .as_secs()
    };
    assert_eq!(delay(DEFAULT), 1800);
    let slower = DEFAULT.replace("no_answer_s = 1800", "no_answer_s = 3600");
    assert_eq!(delay(&slower), 3600);
    let uk = DEFAULT.replace("# abandoned_s = 259200 ", "abandoned_s = 259200 ");
    assert_eq!(delay(&uk), 259_200);
}

#[test]
fn outside_transfer_numbers_are_e164_under_names_of_their_own() {
    let example =
        "# [[campaign.outside_transfer]]\n# name = \"Billing\"\n# number = \"+14155550199\"";
    assert!(DEFAULT.contains(example), "the shipped example");
    let with = |entries: &str| DEFAULT.replace(example, entries);
    let config = parse(&with(
        "[[campaign.outside_transfer]]\nname = \"Billing\"\nnumber = \"+14155550199\"",
    ))
    .expect("one outside number");
    let campaign = &config.campaigns[0];
    assert_eq!(
        campaign
            .outside_transfer("Billing")
            .map(|t| t.number.as_str()),
        Some("+14155550199")
    );
    assert!(campaign.outside_transfer("billing").is_none());
    let problem = only_problem(&with(
        "[[campaign.outside_transfer]]\nname = \"Billing\"\nnumber = \"4155550199\"",
    ));
    assert_eq!(problem.key, "campaign[0].outside_transfer");
    assert!(
        problem
            .message
            .contains("`4155550199` is not an E.164 number"),
        "{problem:?}"
    );
    let problem = only_problem(&with(
        "[[campaign.outside_transfer]]\nname = \"Billing\"\nnumber = \"+14155550199\"\n\
         [[campaign.outside_transfer]]\nname = \"Billing\"\nnumber = \"+14155550198\"",
    ));
    assert!(
        problem.message.contains("`Billing` is named twice"),
        "{problem:?}"
    );
    let problem = only_problem(&with(
        "[[campaign.outside_transfer]]\nname = \" \"\nnumber = \"+14155550199\"",
    ));
    assert!(
        problem.message.contains("a name of 1 to 64 characters"),
        "{problem:?}"
    );
    // The dialer names outside lines so: no agent may be.
    let problem = only_problem(&format!(
        "{DEFAULT}\n[[agent]]\nid = \"outside 1003\"\nname = \"Three\"\nbrowser_phone = true\n"
    ));
    assert_eq!(problem.key, "agent[2].id");
    assert!(
        problem.message.contains("reserved for outside lines"),
        "{problem:?}"
    );
}

#[test]
fn a_daily_attempt_limit_is_optional_but_never_zero() {
    let limit = |line: &str| DEFAULT.replace("# max_attempts_per_day = 2 ", line);
    let config = parse(&limit("max_attempts_per_day = 2 ")).expect("a daily limit of 2");
    assert_eq!(config.campaigns[0].max_attempts_per_day, Some(2));
    assert_eq!(
        parse(DEFAULT).unwrap().campaigns[0].max_attempts_per_day,
        None
    );
    let problem = only_problem(&limit("max_attempts_per_day = 0 "));
    assert_eq!(problem.key, "campaign[0].max_attempts_per_day");
}

#[test]
fn a_call_guide_must_branch_to_its_own_questions_and_end() {
    let config = parse(DEFAULT).expect("the shipped guide is valid");
    assert_eq!(config.campaigns[0].guide.len(), 3);
    assert_eq!(config.campaigns[0].guide[0].id, "interested");
    let looped = DEFAULT.replace(
        "question = \"Why not? (in the customer's words)\"",
        "question = \"Why not? (in the customer's words)\"\nnext = \"interested\"",
    );
    let problem = only_problem(&looped);
    assert_eq!(problem.key, "campaign[0].guide");
    assert!(problem.message.contains("loops back"), "{problem:?}");
    let dangling = DEFAULT.replace("next = \"plan\"", "next = \"plans\"");
    let problem = only_problem(&dangling);
    assert!(problem.message.contains("`plans`"), "{problem:?}");
}

#[test]
fn unknown_campaign_mode_is_rejected() {
    let text = DEFAULT.replace("mode = \"predictive\"", "mode = \"turbo\"");
    let problem = only_problem(&text);
    assert_eq!(problem.key, "campaign[0].mode");
    assert!(problem.message.contains("predictive"), "{problem:?}");
}

#[test]
fn secrets_come_from_the_environment() {
    let text = DEFAULT.replace("# username = \"outdial\"", "username = \"outdial\"");
    let config = Config::parse_with_env(&text, Path::new("x.toml"), |name| {
        (name == Secrets::TRUNK_PASSWORD).then(|| "s3cret".to_string())
    })
    .expect("valid");
    assert_eq!(config.trunk.password.as_deref(), Some("s3cret"));
    assert_eq!(
        Secrets::agent_password_var("ag-7"),
        "OUTDIAL_AGENT_AG_7_PASSWORD"
    );
}

#[test]
fn token_env_must_be_set() {
    let text = DEFAULT.replace(
        "token = \"demo-supervisor-token\"",
        "token_env = \"OUTDIAL_SUPERVISOR_TOKEN\"",
    );
    let problem = only_problem(&text);
    assert_eq!(problem.key, "api.token[0].token_env");
    let config = Config::parse_with_env(&text, Path::new("x.toml"), |name| {
        (name == "OUTDIAL_SUPERVISOR_TOKEN").then(|| "from-the-env".to_string())
    })
    .expect("valid with the variable set");
    assert_eq!(config.api.tokens[0].secret.as_deref(), Some("from-the-env"));
}

#[test]
fn call_hours_parse() {
    assert_eq!(validate::parse_call_hours("08:00-21:00"), Some((480, 1260)));
    assert_eq!(validate::parse_call_hours("00:00-24:00"), Some((0, 1440)));
    assert_eq!(validate::parse_call_hours("21:00-08:00"), None);
    assert_eq!(validate::parse_call_hours("8-21"), None);
    assert_eq!(validate::parse_call_hours("08:60-21:00"), None);
}

#[test]
fn redacts_database_passwords() {
    assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact_url("sqlite://outdial.db"), "sqlite://outdial.db");
}

proptest::proptest! {
    /// Any text, valid TOML or not, yields a config or a located error — never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = parse(&text);
    }

    /// Damaging one line of the shipped config never panics, and every
    /// error names a position.
    #[test]
    fn damaged_default_reports_positions(line in 0usize..100, junk in "[\\[\\]=\"a-z0-9 .]{0,12}") {
        let mut lines: Vec<String> = DEFAULT.lines().map(String::from).collect();
        if line < lines.len() {
            lines[line] = junk;
        }
        if let Err(error) = parse(&lines.join("\n")) {
            for problem in &error.problems {
                proptest::prop_assert!(problem.position.is_some(), "{error}");
            }
        }
    }
}

#[test]
fn a_per_call_agent_needs_a_phone_and_connection_names_its_choices() {
    let per_call = DEFAULT.replace(
        "sip_uri = \"sip:1002@127.0.0.1:5082\"",
        "sip_uri = \"sip:1002@127.0.0.1:5082\"\nconnection = \"per_call\"",
    );
    let config = parse(&per_call).expect("a per-call agent with a sip_uri");
    assert!(config.agents[1].per_call());
    assert!(!config.agents[0].per_call(), "reservation by default");
    let without_phone = per_call.replace(
        "sip_uri = \"sip:1002@127.0.0.1:5082\"\n",
        "simulated = { wrap_up_s = 1, disposition = \"SALE\" }\n",
    );
    let problem = only_problem(&without_phone);
    assert_eq!(problem.key, "agent[1].connection");
    let error = parse(&per_call.replace("\"per_call\"", "\"ringing\"")).expect_err("unknown");
    assert!(error.to_string().contains("per_call"), "{error}");
}

#[test]
fn an_agent_whose_phone_is_the_web_desktop() {
    let browser = DEFAULT.replace(
        "sip_uri = \"sip:1002@127.0.0.1:5082\"",
        "browser_phone = true\nconnection = \"per_call\"",
    );
    let config = parse(&browser).expect("an agent with the web desktop as phone");
    assert!(config.agents[1].has_phone());
    assert!(config.agents[1].per_call(), "rung per call on the browser");
    assert!(!config.agents[0].browser_phone, "off by default");
    assert!(
        config
            .summary()
            .contains("Bob Agent            (the web desktop)"),
        "{}",
        config.summary()
    );
    let simulated = DEFAULT.replace(
        "sip_uri = \"sip:1002@127.0.0.1:5082\"",
        "browser_phone = true\nsimulated = { wrap_up_s = 1, disposition = \"SALE\" }",
    );
    assert_eq!(only_problem(&simulated).key, "agent[1].browser_phone");
}

#[test]
fn a_campaigns_dispositions_and_simulated_codes_are_checked() {
    let config = parse(DEFAULT).expect("the shipped dispositions");
    let codes: Vec<&str> = config.campaigns[0]
        .dispositions
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, vec!["NI", "WRONG_PERSON"]);
    let text = DEFAULT
        .replace("code = \"NI\"", "code = \"not interested\"")
        .replace("code = \"WRONG_PERSON\"", "code = \"DROP\"")
        .replace(
            "sip_uri = \"sip:1002@127.0.0.1:5082\"",
            "sip_uri = \"sip:1002@127.0.0.1:5082\"\nsimulated = { disposition = \"PTP\" }",
        );
    let error = parse(&text).expect_err("must fail");
    let messages: Vec<String> = error
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect();
    for expected in [
        "campaign[0].disposition: code `not interested`",
        "campaign[0].disposition: code `DROP` is the dialer's own",
        "agent[1].simulated.disposition: `PTP` is not a disposition of campaign `demo`",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(expected)),
            "missing {expected} in {messages:?}"
        );
    }
    let effect = DEFAULT.replace("effect = \"final\"", "effect = \"maybe\"");
    assert!(parse(&effect).is_err(), "an unknown effect");
}

#[test]
fn not_ready_reasons_are_a_list_of_distinct_short_names() {
    let config = parse(DEFAULT).expect("the shipped reasons");
    assert!(
        config
            .agent_states
            .not_ready_reasons
            .contains(&"Break".to_string())
    );
    let text = DEFAULT.replace("\"Coaching\", \"Other\"", "\"Break\", \"\"");
    let error = parse(&text).expect_err("a duplicate and an empty reason");
    let problems: Vec<&str> = error
        .problems
        .iter()
        .filter(|p| p.key == "agent_states.not_ready_reasons")
        .map(|p| p.message.as_str())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn the_repeat_call_rule_is_off_by_default_and_its_windows_are_checked() {
    let config = parse(DEFAULT).expect("the shipped file");
    assert_eq!(
        config.campaigns[0].repeat_calls,
        crate::campaign::rules::RepeatCalls::default()
    );
    let uk = DEFAULT.replace(
        "[campaign.cpa]",
        "[campaign.repeat_calls]\nagent_after_abandoned_s = 259200\nagent_after_machine_s = 86400\n\n[campaign.cpa]",
    );
    let config = parse(&uk).expect("Ofcom's windows");
    assert_eq!(
        config.campaigns[0].repeat_calls.agent_after_abandoned_s,
        259_200
    );
    assert_eq!(
        config.campaigns[0].repeat_calls.agent_after_machine_s,
        86_400
    );
    // Milliseconds by mistake: 72 h would be 8.2 years.
    let problem = only_problem(&uk.replace("259200", "259200000"));
    assert_eq!(problem.key, "campaign[0].repeat_calls");
    assert!(
        problem.message.contains("agent_after_abandoned_s"),
        "{}",
        problem.message
    );
    let error =
        parse(&uk.replace("agent_after_machine_s", "after_machine_s")).expect_err("unknown key");
    assert!(error.to_string().contains("after_machine_s"), "{error}");
}

#[test]
fn an_agent_share_weight_is_above_0_and_at_most_100() {
    let weighted = |w: &str| {
        DEFAULT.replace(
            "lines_per_agent = 1.0",
            &format!("lines_per_agent = 1.0\nagent_share_weight = {w}"),
        )
    };
    assert_eq!(
        parse(DEFAULT).expect("shipped").campaigns[0].agent_share_weight,
        1.0
    );
    assert_eq!(
        parse(&weighted("2.5")).expect("a weight").campaigns[0].agent_share_weight,
        2.5
    );
    for bad in ["0.0", "-1.0", "101.0", "nan"] {
        let problem = only_problem(&weighted(bad));
        assert_eq!(problem.key, "campaign[0].agent_share_weight", "{bad}");
        assert!(
            problem.message.contains("not a weight"),
            "{}",
            problem.message
        );
    }
}

#[test]
fn an_agent_reserved_at_dial_needs_one_progressive_line_per_agent() {
    let reserved = DEFAULT.replace(
        "lines_per_agent = 1.0",
        "lines_per_agent = 1.0\nagent_reserved_at_dial = true",
    );
    let progressive = reserved.replace("mode = \"predictive\"", "mode = \"progressive\"");
    let config = parse(&progressive).expect("progressive, one line per agent");
    assert!(config.campaigns[0].agent_reserved_at_dial);
    assert!(!parse(DEFAULT).expect("shipped").campaigns[0].agent_reserved_at_dial);
    let problem = only_problem(&reserved);
    assert_eq!(problem.key, "campaign[0].agent_reserved_at_dial");
    assert!(
        problem.message.contains("progressive") && problem.message.contains("before agents"),
        "{}",
        problem.message
    );
    let problem =
        only_problem(&progressive.replace("lines_per_agent = 1.0", "lines_per_agent = 2.0"));
    assert_eq!(problem.key, "campaign[0].agent_reserved_at_dial");
    assert!(
        problem.message.contains("lines_per_agent must be 1"),
        "{}",
        problem.message
    );
}

#[test]
fn the_preview_variant_is_for_the_preview_modes() {
    let standard = DEFAULT.replace(
        "lines_per_agent = 1.0",
        "lines_per_agent = 1.0\npreview_variant = \"standard\"",
    );
    let problem = only_problem(&standard);
    assert_eq!(problem.key, "campaign[0].preview_variant");
    let preview = standard.replace("mode = \"predictive\"", "mode = \"preview\"");
    let config = parse(&preview).expect("a standard preview campaign");
    assert_eq!(
        config.campaigns[0].preview_variant,
        crate::config::PreviewVariant::Standard
    );
    let error = parse(&preview.replace("\"standard\"", "\"indirect\"")).expect_err("unknown");
    assert!(error.to_string().contains("indirect"), "{error}");
}

#[test]
fn registering_with_the_trunk_needs_a_username_and_a_sane_lifetime() {
    let config = parse(DEFAULT).unwrap();
    assert!(!config.trunk.register, "off by default");
    assert_eq!(config.trunk.register_expires_s, 3600);
    let text = DEFAULT.replace(
        "options_interval_s = 30",
        "options_interval_s = 30\nregister = true",
    );
    let problem = only_problem(&text);
    assert_eq!(problem.key, "trunk.register");
    assert!(problem.message.contains("username"), "{}", problem.message);
    let text = DEFAULT.replace(
        "options_interval_s = 30",
        "options_interval_s = 30\nregister = true\nusername = \"u\"\nregister_expires_s = 5",
    );
    assert_eq!(only_problem(&text).key, "trunk.register_expires_s");
    let text = DEFAULT.replace(
        "options_interval_s = 30",
        "options_interval_s = 30\nregister = true\nusername = \"u\"\nregister_expires_s = 600",
    );
    let config = parse(&text).unwrap();
    assert!(config.trunk.register);
    assert_eq!(config.trunk.register_expires_s, 600);
    assert!(
        config
            .summary()
            .contains("auth digest, registers for 600 s"),
        "{}",
        config.summary()
    );
}

#[test]
fn dns_servers_take_an_ip_or_an_ip_and_port() {
    let config = parse(DEFAULT).expect("the shipped config must load");
    assert!(config.sip.dns_servers.is_empty(), "the system's by default");
    let text = DEFAULT.replace(
        "# dns_servers = [\"192.0.2.53\"]",
        "dns_servers = [\"192.0.2.53\", \"127.0.0.1:5353\"]",
    );
    let config = parse(&text).expect("loads");
    assert_eq!(
        config.sip.dns_servers,
        [
            "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        ]
    );
    let text = DEFAULT.replace(
        "# dns_servers = [\"192.0.2.53\"]",
        "dns_servers = [\"ns1.example.net\"]",
    );
    let problem = only_problem(&text);
    assert_eq!(problem.key, "sip.dns_servers");
    assert!(
        problem
            .message
            .contains("`ns1.example.net` is not a DNS server"),
        "{problem:?}"
    );
}

#[test]
fn the_session_timer_asked_for_is_off_or_at_least_90_s() {
    let config = parse(DEFAULT).expect("loads");
    assert_eq!(
        config.trunk.session_timer_asked(),
        Some(std::time::Duration::from_secs(1800)),
        "asked for by default"
    );
    let off = DEFAULT.replace("# session_expires_s = 1800", "session_expires_s = 0");
    assert_eq!(
        parse(&off).expect("loads").trunk.session_timer_asked(),
        None
    );
    let short = DEFAULT.replace("# session_expires_s = 1800", "session_expires_s = 60");
    let problem = only_problem(&short);
    assert_eq!(problem.key, "trunk.session_expires_s");
    assert!(problem.message.contains("90"), "{problem:?}");
}

#[test]
fn redirects_are_followed_unless_turned_off() {
    assert!(parse(DEFAULT).expect("loads").trunk.follow_redirects);
    let off = DEFAULT.replace("# follow_redirects = true", "follow_redirects = false");
    assert!(!parse(&off).expect("loads").trunk.follow_redirects);
    let wrong = DEFAULT.replace("# follow_redirects = true", "follow_redirects = \"yes\"");
    assert!(parse(&wrong).is_err(), "a string is refused");
}

#[test]
fn local_presence_needs_numbers_to_choose_from() {
    let without = DEFAULT.replace("# local_presence = true", "local_presence = true");
    let problem = only_problem(&without);
    assert_eq!(problem.key, "campaign[0].local_presence");
    assert!(problem.message.contains("caller_ids"), "{problem:?}");
    let with = without.replace(
        "# caller_ids = [\"+14155550100\"]",
        "caller_ids = [\"+14155550100\"]",
    );
    let config = parse(&with).expect("loads");
    assert!(config.campaigns[0].local_presence);
    assert!(!parse(DEFAULT).expect("loads").campaigns[0].local_presence);
}
