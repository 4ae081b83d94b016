//! Campaigns a supervisor defines at run time (`POST /api/campaigns`), as
//! opposed to `[[campaign]]` tables in the file.
//!
//! A definition is the keys of a `[[campaign]]` table as a JSON object, plus
//! `agents`: the ids of the configured agents assigned to it (the file
//! assigns agents from the `[[agent]]` side, `campaigns = [...]`). It is
//! checked by the same rules as the file ([`super::campaign_problems`]),
//! kept in the store so every start brings it back, and changed with a JSON
//! merge patch (RFC 7396: keys given replace, `null` resets to the default,
//! nested tables such as `cpa` and `retry` merge key by key).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{CampaignConfig, CampaignSource};

/// Longest name of a campaign defined through the API (names appear in
/// URLs, metrics labels and exports).
pub const MAX_NAME_LEN: usize = 64;

/// One thing wrong with a definition: the key it is about (`""` for the
/// whole body) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefinitionProblem {
    pub key: String,
    pub message: String,
}

impl DefinitionProblem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A campaign defined through the API, with the agents assigned to it.
#[derive(Debug, Clone)]
pub struct CampaignDefinition {
    pub campaign: CampaignConfig,
    pub agents: Vec<String>,
}

impl CampaignDefinition {
    /// Reads a definition from its JSON object. Every problem is returned,
    /// not just the first: the keys' types first (a body that does not
    /// parse cannot be checked further), then the file's rules, the name
    /// rules and the agents (`known_agents`: the configured agents' ids).
    pub fn from_json(
        value: &Value,
        known_agents: &BTreeSet<String>,
    ) -> Result<Self, Vec<DefinitionProblem>> {
        let Some(object) = value.as_object() else {
            return Err(vec![DefinitionProblem::new(
                "",
                "the body must be a JSON object with the keys of a [[campaign]] table",
            )]);
        };
        let mut problems = Vec::new();
        let mut fields = object.clone();
        let agents = match fields.remove("agents") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut agents = Vec::new();
                for item in items {
                    match item {
                        Value::String(id) if !agents.contains(&id) => agents.push(id),
                        Value::String(_) => {}
                        other => problems.push(DefinitionProblem::new(
                            "agents",
                            format!("`{other}` is not an agent id (a string)"),
                        )),
                    }
                }
                agents
            }
            Some(other) => {
                problems.push(DefinitionProblem::new(
                    "agents",
                    format!("expected a list of agent ids, got `{other}`"),
                ));
                Vec::new()
            }
        };
        let mut campaign: CampaignConfig = match serde_json::from_value(Value::Object(fields)) {
            Ok(campaign) => campaign,
            Err(error) => {
                problems.push(DefinitionProblem::new("", error.to_string()));
                return Err(problems);
            }
        };
        campaign.source = CampaignSource::Api;
        let definition = CampaignDefinition { campaign, agents };
        problems.extend(definition.problems(known_agents));
        if problems.is_empty() {
            Ok(definition)
        } else {
            Err(problems)
        }
    }

    /// The definition as stored and shown: every key of the campaign (the
    /// defaults written out) and `agents`.
    pub fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(&self.campaign).unwrap_or(Value::Null);
        if let Some(object) = value.as_object_mut() {
            object.insert("agents".into(), Value::from(self.agents.clone()));
        }
        value
    }

    /// Whether both define the same campaign (settings and agents; the
    /// agents' order does not matter).
    pub fn same_as(&self, other: &CampaignDefinition) -> bool {
        let mut mine = self.agents.clone();
        let mut theirs = other.agents.clone();
        mine.sort();
        theirs.sort();
        mine == theirs
            && serde_json::to_value(&self.campaign).ok()
                == serde_json::to_value(&other.campaign).ok()
    }

    /// The definition with `patch` merged in (RFC 7396). The name cannot
    /// change: it keys the campaign's records and history.
    pub fn patched(
        &self,
        patch: &Value,
        known_agents: &BTreeSet<String>,
    ) -> Result<Self, Vec<DefinitionProblem>> {
        if !patch.is_object() {
            return Err(vec![DefinitionProblem::new(
                "",
                "the body must be a JSON object of the keys to change",
            )]);
        }
        if let Some(name) = patch.get("name")
            && name.as_str() != Some(self.campaign.name.as_str())
        {
            return Err(vec![DefinitionProblem::new(
                "name",
                "a campaign cannot be renamed: its records and history are kept under its name",
            )]);
        }
        let mut merged = self.to_json();
        merge_patch(&mut merged, patch);
        Self::from_json(&merged, known_agents)
    }

    fn problems(&self, known_agents: &BTreeSet<String>) -> Vec<DefinitionProblem> {
        let mut problems: Vec<DefinitionProblem> = super::campaign_problems(&self.campaign)
            .into_iter()
            .map(|(key, message)| DefinitionProblem::new(key, message))
            .collect();
        let name = &self.campaign.name;
        if !name.is_empty() && !valid_name(name) {
            problems.push(DefinitionProblem::new(
                "name",
                format!(
                    "`{name}`: use 1 to {MAX_NAME_LEN} letters, digits, `-`, `_` or `.` \
                     (the name appears in URLs and exports)"
                ),
            ));
        }
        for agent in self.agents.iter().filter(|a| !known_agents.contains(*a)) {
            problems.push(DefinitionProblem::new(
                "agents",
                format!("no configured agent has the id `{agent}`"),
            ));
        }
        problems
    }
}

/// Reads one stored definition (`name`, its JSON) against the configured
/// agents: an agent no longer configured is dropped from it (a warning
/// says so); a definition that no longer reads is an error.
pub fn read_stored(
    name: &str,
    json: &str,
    known_agents: &BTreeSet<String>,
    warnings: &mut Vec<String>,
) -> Result<CampaignDefinition, String> {
    let mut value: Value = serde_json::from_str(json)
        .map_err(|error| format!("its stored definition is not JSON ({error})"))?;
    if let Some(Value::Array(agents)) = value.get_mut("agents") {
        agents.retain(|agent| {
            let known = agent.as_str().is_some_and(|id| known_agents.contains(id));
            if !known {
                warnings.push(format!(
                    "campaign `{name}`: agent {agent} is no longer configured; left out"
                ));
            }
            known
        });
    }
    let definition = CampaignDefinition::from_json(&value, known_agents).map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if definition.campaign.name != name {
        return Err(format!(
            "its stored definition names `{}`",
            definition.campaign.name
        ));
    }
    Ok(definition)
}

/// Adds the campaigns defined through the API (as the store keeps them:
/// name and JSON) to a configuration read from the file, and assigns
/// their agents. Nothing here stops the dialer from starting: a definition
/// that no longer reads (a key renamed by an upgrade), or whose name the
/// file now uses (the file wins), is left out, and an agent no longer
/// configured is dropped from it; each such case is returned, to be
/// logged.
pub fn add_stored_definitions(
    config: &mut super::Config,
    stored: &[(String, String)],
) -> Vec<String> {
    let mut warnings = Vec::new();
    let known_agents: BTreeSet<String> = config.agents.iter().map(|a| a.id.clone()).collect();
    for (name, json) in stored {
        if config.campaigns.iter().any(|c| &c.name == name) {
            warnings.push(format!(
                "campaign `{name}` defined through the API is left out: the configuration \
                 file defines a campaign of that name"
            ));
            continue;
        }
        match read_stored(name, json, &known_agents, &mut warnings) {
            Ok(definition) => {
                for agent in config
                    .agents
                    .iter_mut()
                    .filter(|a| definition.agents.contains(&a.id))
                {
                    if !agent.campaigns.contains(name) {
                        agent.campaigns.push(name.clone());
                    }
                }
                config.campaigns.push(definition.campaign);
            }
            Err(why) => warnings.push(format!(
                "campaign `{name}` defined through the API is left out: {why}"
            )),
        }
    }
    warnings
}

/// Whether `name` may name a campaign defined through the API.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// RFC 7396 JSON merge patch: objects merge key by key, `null` removes a
/// key (here: back to its default), anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn agents() -> BTreeSet<String> {
        ["1001", "1002"].iter().map(|s| s.to_string()).collect()
    }

    fn keys(problems: &[DefinitionProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn a_minimal_definition_takes_the_file_defaults() {
        let definition = CampaignDefinition::from_json(
            &json!({"name": "spring-sale", "mode": "predictive", "agents": ["1001"]}),
            &agents(),
        )
        .expect("valid");
        assert_eq!(definition.campaign.name, "spring-sale");
        assert_eq!(definition.campaign.abandon_target, 0.03);
        assert_eq!(definition.campaign.call_hours, "08:00-21:00");
        assert_eq!(definition.campaign.source, CampaignSource::Api);
        assert_eq!(definition.agents, vec!["1001".to_string()]);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let problems = CampaignDefinition::from_json(
            &json!({
                "name": "bad name!",
                "mode": "progressive",
                "lines_per_agent": 40.0,
                "abandon_target": 3,
                "ring_timeout_s": 10,
                "caller_id": "12ab",
                "agents": ["1001", "9999", 7]
            }),
            &agents(),
        )
        .expect_err("invalid");
        let keys = keys(&problems);
        for key in [
            "name",
            "lines_per_agent",
            "abandon_target",
            "ring_timeout_s",
            "caller_id",
            "agents",
        ] {
            assert!(keys.contains(&key), "{key} missing from {problems:?}");
        }
        assert_eq!(keys.iter().filter(|k| **k == "agents").count(), 2);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        let problems = CampaignDefinition::from_json(
            &json!({"name": "x", "mode": "predictive", "pace": "fast"}),
            &agents(),
        )
        .expect_err("unknown key");
        assert!(problems[0].message.contains("pace"), "{problems:?}");
        let problems =
            CampaignDefinition::from_json(&json!({"name": "x", "mode": "sideways"}), &agents())
                .expect_err("unknown mode");
        assert!(problems[0].message.contains("sideways"), "{problems:?}");
        assert!(CampaignDefinition::from_json(&json!([1, 2]), &agents()).is_err());
    }

    #[test]
    fn a_patch_merges_resets_and_keeps_the_name() {
        let definition = CampaignDefinition::from_json(
            &json!({
                "name": "renewals",
                "mode": "predictive",
                "abandon_target": 0.02,
                "cpa": {"max_analysis_ms": 5000, "connect_first": true},
                "agents": ["1001"]
            }),
            &agents(),
        )
        .expect("valid");
        let changed = definition
            .patched(
                &json!({
                    "mode": "progressive",
                    "lines_per_agent": 2.0,
                    "abandon_target": null,
                    "cpa": {"connect_first": false},
                    "agents": ["1001", "1002"]
                }),
                &agents(),
            )
            .expect("valid patch");
        assert_eq!(changed.campaign.mode, super::super::DialMode::Progressive);
        assert_eq!(changed.campaign.lines_per_agent, 2.0);
        // null: back to the default.
        assert_eq!(changed.campaign.abandon_target, 0.03);
        // Nested tables merge key by key.
        assert_eq!(changed.campaign.cpa.max_analysis_ms, 5000);
        assert!(!changed.campaign.cpa.connect_first);
        assert_eq!(changed.agents.len(), 2);
        let renamed = definition.patched(&json!({"name": "other"}), &agents());
        assert_eq!(keys(&renamed.expect_err("rename")), vec!["name"]);
        let invalid = definition.patched(&json!({"ring_timeout_s": 3}), &agents());
        assert_eq!(
            keys(&invalid.expect_err("too short")),
            vec!["ring_timeout_s"]
        );
    }

    #[test]
    fn stored_definitions_join_the_file_and_never_stop_the_start() {
        let text = std::fs::read_to_string("config/outdial.toml").expect("shipped config");
        let mut config = crate::config::Config::parse(&text, std::path::Path::new("outdial.toml"))
            .expect("shipped config parses");
        let file_campaign = config.campaigns[0].name.clone();
        let agent = config.agents[0].id.clone();
        let stored = vec![
            (
                "spring".to_string(),
                json!({"name": "spring", "mode": "progressive", "agents": [agent, "gone"]})
                    .to_string(),
            ),
            (
                file_campaign.clone(),
                json!({"name": file_campaign, "mode": "preview"}).to_string(),
            ),
            ("broken".to_string(), "{not json".to_string()),
            (
                "old".to_string(),
                json!({"name": "old", "mode": "predictive", "renamed_key": 1}).to_string(),
            ),
        ];
        let before = config.campaigns.len();
        let warnings = add_stored_definitions(&mut config, &stored);
        assert_eq!(config.campaigns.len(), before + 1, "{warnings:?}");
        let spring = config.campaigns.last().expect("added");
        assert_eq!(
            (spring.name.as_str(), spring.source),
            ("spring", CampaignSource::Api)
        );
        assert!(config.agents[0].campaigns.contains(&"spring".to_string()));
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        for (warning, about) in warnings.iter().zip(["gone", "file", "JSON", "renamed_key"]) {
            assert!(warning.contains(about), "{warning}");
        }
    }

    /// JSON values built from the definition's own keys (and some others)
    /// with values of every type, nested: what a fuzzer would try first.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let keys = prop::sample::select(vec![
            "name",
            "mode",
            "abandon_target",
            "lines_per_agent",
            "caller_id",
            "ring_timeout_s",
            "call_hours",
            "call_days",
            "agents",
            "cpa",
            "retry",
            "guide",
            "max_attempts",
            "max_attempts_per_day",
            "preview_timeout_s",
            "caller_ids",
            "machine_action",
            "max_analysis_ms",
            "connect_first",
            "busy_s",
            "other",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop::sample::select(vec![
                "predictive",
                "progressive",
                "preview",
                "1001",
                "08:00-21:00",
                "mon",
                "+15551230000",
                "x",
                "",
                "hangup",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_definition_and_patch_are_checked_without_panicking(
            mut body in any_json(),
            patch in any_json(),
        ) {
            if let Value::Object(object) = &mut body {
                // Often a valid start, so the patch path is reached too.
                object.entry("name").or_insert(json!("c"));
                object.entry("mode").or_insert(json!("preview"));
            }
            if let Ok(definition) = CampaignDefinition::from_json(&body, &agents()) {
                let again = CampaignDefinition::from_json(&definition.to_json(), &agents());
                proptest::prop_assert!(again.is_ok(), "the stored form reads back");
                let _ = definition.patched(&patch, &agents());
            }
        }
    }

    #[test]
    fn the_stored_form_reads_back_the_same() {
        let definition = CampaignDefinition::from_json(
            &json!({
                "name": "survey.2026",
                "mode": "push_preview",
                "preview_timeout_s": 20,
                "guide": [{"id": "q1", "question": "Happy?", "answers": [{"text": "yes"}]}],
                "agents": ["1002"]
            }),
            &agents(),
        )
        .expect("valid");
        let again =
            CampaignDefinition::from_json(&definition.to_json(), &agents()).expect("round trip");
        assert_eq!(again.to_json(), definition.to_json());
    }
}
