//! Campaigns defined, changed and removed while the dialer runs (a
//! supervisor's `POST`, `PATCH` and `DELETE /api/campaigns…`).
//!
//! A campaign is changed or removed only when nothing of it is in motion —
//! not running, no call of it in flight, no agent in its wrap-up — so no
//! call is ever handled by two sets of rules. A change drops the campaign's
//! pacer, hopper and figures; its next start builds them from the new
//! settings and reads the abandonment windows back from the store, as the
//! first start after a restart does.

use super::campaign_run::RunState;
use super::dialer::{CampaignEntry, CommandError, Dialer, Event};
use crate::config::CampaignSource;
use crate::config::definition::CampaignDefinition;

impl Dialer {
    /// The campaign's settings and assigned agents, as a definition (also
    /// for campaigns of the file, read-only there).
    pub fn campaign_definition(&self, name: &str) -> Option<CampaignDefinition> {
        let entry = self.campaigns.get(name)?;
        Some(CampaignDefinition {
            campaign: entry.config.clone(),
            agents: self
                .agents
                .iter()
                .filter(|(_, a)| a.campaigns.iter().any(|c| c == name))
                .map(|(id, _)| id.clone())
                .collect(),
        })
    }

    /// Whether `definition` may be applied now: a new name when
    /// `replace` is false; else a campaign created through the API with
    /// nothing in motion.
    pub fn check_definition(
        &self,
        definition: &CampaignDefinition,
        replace: bool,
    ) -> Result<(), CommandError> {
        let name = &definition.campaign.name;
        if let Some(agent) = definition
            .agents
            .iter()
            .find(|a| !self.agents.contains_key(*a))
        {
            return Err(CommandError::UnknownAgent(agent.clone()));
        }
        if replace {
            self.check_changeable(name)
        } else if self.campaigns.contains_key(name) {
            Err(CommandError::Unavailable(format!(
                "a campaign named `{name}` exists already"
            )))
        } else {
            Ok(())
        }
    }

    /// Adds a campaign, or replaces one created through the API (see
    /// [`Dialer::check_definition`]). Its agents hear of it as of a
    /// campaign loaded (or in its present state).
    pub fn apply_definition(
        &mut self,
        definition: CampaignDefinition,
        replace: bool,
    ) -> Result<(), CommandError> {
        self.check_definition(&definition, replace)?;
        let CampaignDefinition {
            mut campaign,
            agents,
        } = definition;
        campaign.source = CampaignSource::Api;
        let name = campaign.name.clone();
        let state = self
            .campaigns
            .get(&name)
            .map_or(RunState::Loaded, |entry| entry.state);
        // Its next start builds the pacer and hopper from the new settings.
        self.live.remove(&name);
        self.campaigns.insert(
            name.clone(),
            CampaignEntry {
                mode: campaign.mode,
                abandon_target: campaign.abandon_target,
                state,
                config: campaign,
            },
        );
        self.assign_agents(&name, &agents);
        self.events.push_back(Event::CampaignState {
            campaign: name,
            state: state.name(),
            agents,
        });
        Ok(())
    }

    /// Removes a campaign created through the API (nothing of it in
    /// motion). Its records stay in the store.
    pub fn remove_campaign(&mut self, name: &str) -> Result<(), CommandError> {
        self.check_changeable(name)?;
        let agents: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| a.campaigns.iter().any(|c| c == name))
            .map(|(id, _)| id.clone())
            .collect();
        self.assign_agents(name, &[]);
        self.campaigns.remove(name);
        self.live.remove(name);
        self.events.push_back(Event::CampaignState {
            campaign: name.to_string(),
            state: "removed",
            agents,
        });
        Ok(())
    }

    fn check_changeable(&self, name: &str) -> Result<(), CommandError> {
        let entry = self
            .campaigns
            .get(name)
            .ok_or_else(|| CommandError::UnknownCampaign(name.to_string()))?;
        if entry.config.source != CampaignSource::Api {
            return Err(CommandError::Unavailable(format!(
                "campaign `{name}` is defined in the configuration file: change its \
                 [[campaign]] table there"
            )));
        }
        if entry.state == RunState::Running {
            return Err(CommandError::Unavailable(format!(
                "campaign `{name}` is running: pause or stop it first"
            )));
        }
        let calls = self.calls.values().filter(|c| c.campaign == name).count();
        if calls > 0 {
            return Err(CommandError::Unavailable(format!(
                "{calls} call(s) of campaign `{name}` are still in progress; try again when \
                 they have ended"
            )));
        }
        let wrapping: Vec<&str> = self
            .awaiting_disposition
            .iter()
            .filter(|(_, record)| record.campaign == name)
            .map(|(agent, _)| agent.as_str())
            .collect();
        if !wrapping.is_empty() {
            return Err(CommandError::Unavailable(format!(
                "agent(s) {} are in the wrap-up of a call of campaign `{name}`; try again \
                 when they have set its disposition",
                wrapping.join(", ")
            )));
        }
        Ok(())
    }

    /// Exactly `agents` are assigned to the campaign afterwards.
    fn assign_agents(&mut self, name: &str, agents: &[String]) {
        for (id, entry) in self.agents.iter_mut() {
            let assigned = agents.contains(id);
            let had = entry.campaigns.iter().any(|c| c == name);
            if assigned && !had {
                entry.campaigns.push(name.to_string());
            } else if !assigned && had {
                entry.campaigns.retain(|c| c != name);
                entry.joined.remove(name);
                entry.left.remove(name);
            }
        }
    }

    /// The configured agents' ids.
    pub fn agent_id_set(&self) -> std::collections::BTreeSet<String> {
        self.agents.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use crate::config::definition::CampaignDefinition;
    use crate::engine::campaign_run::RunCommand;
    use crate::engine::dialer::{Command, CommandError, Dialer, Event};
    use crate::engine::io::Effect;

    const CAMPAIGNS: &str = r#"
[[campaign]]
name = "demo"
mode = "progressive"
[[agent]]
id = "a1"
name = "Ann"
campaigns = ["demo"]
simulated = { wrap_up_s = 3, disposition = "SALE" }
[[agent]]
id = "a2"
name = "Bob"
simulated = { wrap_up_s = 3, disposition = "SALE" }
"#;

    fn dialer(now: Instant) -> Dialer {
        let config = crate::config::Config::parse(
            &format!("{}{CAMPAIGNS}", crate::engine::test_node_toml(10, 100.0)),
            std::path::Path::new("outdial.toml"),
        )
        .expect("test configuration");
        Dialer::new(&config, now)
    }

    fn definition(body: serde_json::Value) -> CampaignDefinition {
        let agents = ["a1", "a2"].iter().map(|s| s.to_string()).collect();
        CampaignDefinition::from_json(&body, &agents).expect("valid definition")
    }

    #[test]
    fn a_defined_campaign_is_assigned_started_changed_and_removed() {
        let now = Instant::now();
        let mut dialer = dialer(now);
        let spring = definition(json!({"name": "spring", "mode": "progressive", "agents": ["a1"]}));
        dialer.apply_definition(spring.clone(), false).expect("new");
        assert!(matches!(
            dialer.apply_definition(spring.clone(), false),
            Err(CommandError::Unavailable(_))
        ));
        let view = dialer
            .campaign_views()
            .into_iter()
            .find(|c| c.name == "spring")
            .expect("listed");
        assert_eq!((view.state, view.source), ("loaded", "api"));
        assert_eq!(
            dialer.campaign_definition("spring").expect("known").agents,
            vec!["a1".to_string()]
        );
        let told = std::iter::from_fn(|| dialer.poll_event()).any(|e| {
            matches!(e, Event::CampaignState { ref campaign, state: "loaded", ref agents }
                if campaign == "spring" && agents == &["a1".to_string()])
        });
        assert!(told, "the assigned agent hears of the new campaign");

        // Running: no change; paused with nothing in motion: changed, and
        // its next start builds a new pacer (and reads its history back).
        dialer
            .handle_command(
                Command::Campaign {
                    name: "spring".into(),
                    command: RunCommand::Start,
                },
                now,
            )
            .expect("start");
        let faster =
            definition(json!({"name": "spring", "mode": "predictive", "agents": ["a1", "a2"]}));
        assert!(matches!(
            dialer.apply_definition(faster.clone(), true),
            Err(CommandError::Unavailable(message)) if message.contains("running")
        ));
        assert!(matches!(
            dialer.remove_campaign("spring"),
            Err(CommandError::Unavailable(_))
        ));
        let later = now + Duration::from_secs(1);
        dialer
            .handle_command(
                Command::Campaign {
                    name: "spring".into(),
                    command: RunCommand::Pause,
                },
                later,
            )
            .expect("pause");
        dialer.apply_definition(faster, true).expect("changed");
        let view = dialer
            .campaign_views()
            .into_iter()
            .find(|c| c.name == "spring")
            .expect("listed");
        assert_eq!((view.mode.as_str(), view.state), ("predictive", "paused"));
        assert_eq!(
            dialer
                .campaign_definition("spring")
                .expect("known")
                .agents
                .len(),
            2
        );
        while dialer.poll_effect().is_some() {}
        dialer
            .handle_command(
                Command::Campaign {
                    name: "spring".into(),
                    command: RunCommand::Start,
                },
                later,
            )
            .expect("start again");
        let reloads = std::iter::from_fn(|| dialer.poll_effect()).any(
            |e| matches!(e, Effect::LoadAnswerHistory { ref campaign } if campaign == "spring"),
        );
        assert!(reloads, "the new pacer reads the abandonment history back");

        dialer
            .handle_command(
                Command::Campaign {
                    name: "spring".into(),
                    command: RunCommand::Stop,
                },
                later,
            )
            .expect("stop");
        dialer.remove_campaign("spring").expect("removed");
        assert!(dialer.campaign_definition("spring").is_none());
        assert!(matches!(
            dialer.remove_campaign("spring"),
            Err(CommandError::UnknownCampaign(_))
        ));
    }

    #[test]
    fn campaigns_of_the_file_are_not_changed_through_the_api() {
        let now = Instant::now();
        let mut dialer = dialer(now);
        let demo = dialer
            .campaign_definition("demo")
            .expect("the file's campaign");
        assert!(matches!(
            dialer.apply_definition(demo, true),
            Err(CommandError::Unavailable(message)) if message.contains("configuration file")
        ));
        assert!(matches!(
            dialer.remove_campaign("demo"),
            Err(CommandError::Unavailable(_))
        ));
        let stranger = definition(json!({"name": "x", "mode": "preview"}));
        let mut with_unknown = stranger;
        with_unknown.agents = vec!["nobody".into()];
        assert!(matches!(
            dialer.apply_definition(with_unknown, false),
            Err(CommandError::UnknownAgent(_))
        ));
    }
}
