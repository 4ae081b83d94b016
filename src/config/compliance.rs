//! Compliance warnings: settings that are valid (a campaign may dial
//! countries with other rules, or be a test) but that break the rules most
//! outbound campaigns are held to (`TELEPHONY.md`, "Regulation"). They do
//! not stop the dialer; `outdial check-config` prints them, `outdial run`
//! logs them at start, and the campaign API returns them with a definition.

use super::{CampaignConfig, Config, DialMode};
use crate::campaign::window::CallingWindow;

/// The hard cap of the US (FTC TSR, FCC 47 CFR 64.1200(a)(7)) and UK
/// (Ofcom) rules: abandoned calls ÷ live answers.
const REGULATORY_ABANDON_CAP: f64 = 0.03;
/// 08:00–21:00 in the called party's local time (47 CFR 64.1200(c)(1)).
const EARLIEST_CALL_MIN: u16 = 8 * 60;
const LATEST_CALL_MIN: u16 = 21 * 60;

/// What in `campaign`'s settings likely breaks the rules, one sentence each.
pub fn campaign_warnings(campaign: &CampaignConfig) -> Vec<String> {
    let name = &campaign.name;
    let mut warnings = Vec::new();
    let may_abandon = match campaign.mode {
        DialMode::Predictive => true,
        DialMode::Progressive => !campaign.agent_reserved_at_dial,
        DialMode::Preview | DialMode::PushPreview => false,
    };
    if may_abandon && campaign.abandon_prompt.is_none() {
        warnings.push(format!(
            "campaign `{name}`: no `abandon_prompt`: a live person no agent takes within 2 s \
             is hung up on in silence; the US rules (47 CFR 64.1200(a)(7)) want a recorded \
             message naming the seller with a number to call back, Ofcom an information message"
        ));
    }
    if campaign.abandon_target > REGULATORY_ABANDON_CAP {
        warnings.push(format!(
            "campaign `{name}`: `abandon_target` {:.1} % is above the 3 % the US and UK rules allow",
            campaign.abandon_target * 100.0
        ));
    }
    if let Ok(window) = CallingWindow::parse(&campaign.call_hours, &campaign.call_days)
        && (window.start_min < EARLIEST_CALL_MIN || window.end_min > LATEST_CALL_MIN)
    {
        warnings.push(format!(
            "campaign `{name}`: `call_hours` {} reach outside 08:00-21:00 of the contact's \
             local time, the hours the US rules allow (47 CFR 64.1200(c)(1))",
            campaign.call_hours
        ));
    }
    warnings
}

impl Config {
    /// Every campaign's compliance warnings.
    pub fn compliance_warnings(&self) -> Vec<String> {
        self.campaigns.iter().flat_map(campaign_warnings).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(extra: &str) -> CampaignConfig {
        let mode = if extra.contains("mode =") {
            ""
        } else {
            "mode = \"predictive\"\n"
        };
        let text = format!("name = \"c\"\n{mode}{extra}");
        toml::from_str(&text).expect("a campaign")
    }

    #[test]
    fn a_compliant_campaign_has_no_warnings() {
        let c = campaign("abandon_prompt = \"abandon.wav\"");
        assert_eq!(campaign_warnings(&c), Vec::<String>::new());
    }

    #[test]
    fn no_abandon_message_in_a_mode_that_can_abandon() {
        let warned = |extra: &str| {
            campaign_warnings(&campaign(extra))
                .iter()
                .any(|w| w.contains("no `abandon_prompt`"))
        };
        assert!(warned(""));
        assert!(warned("mode = \"progressive\""));
        assert!(!warned(
            "mode = \"progressive\"\nagent_reserved_at_dial = true"
        ));
        assert!(!warned("mode = \"preview\""));
        assert!(!warned("mode = \"push_preview\""));
        assert!(!warned("abandon_prompt = \"abandon.wav\""));
    }

    #[test]
    fn an_abandon_target_over_three_percent_and_hours_outside_the_us_window() {
        let warnings = campaign_warnings(&campaign(
            "abandon_prompt = \"a.wav\"\nabandon_target = 0.05\ncall_hours = \"07:30-21:00\"",
        ));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("5.0 %"), "{warnings:?}");
        assert!(warnings[1].contains("07:30-21:00"), "{warnings:?}");
        let late = campaign("abandon_prompt = \"a.wav\"\ncall_hours = \"09:00-21:30\"");
        assert_eq!(campaign_warnings(&late).len(), 1);
        let inside = campaign(
            "abandon_prompt = \"a.wav\"\nabandon_target = 0.03\ncall_hours = \"08:00-21:00\"",
        );
        assert!(campaign_warnings(&inside).is_empty());
    }
}
