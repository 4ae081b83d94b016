//! Agents correct the contact they are handling (the German seed's
//! contact view, the Italian seed's "aggiornare i record dei clienti"):
//! the name and the list's extra columns of the record on their preview
//! screen, on their call, or in their wrap-up. The engine's copy changes at
//! once (screen pop, agent view) and the store's through
//! [`Effect::UpdateContact`].

use serde_json::{Map, Value};

use super::dialer::{CommandError, Dialer};
use super::io::Effect;
use crate::agent::AgentState;
use crate::store::Lease;

/// The longest name and field name, and the custom fields' JSON, accepted.
const MAX_NAME_CHARS: usize = 200;
const MAX_FIELD_NAME_CHARS: usize = 64;
const MAX_CUSTOM_JSON_BYTES: usize = 16 * 1024;

/// What an agent changes: a new name, and fields to set (a string, number
/// or boolean) or remove (null) — an RFC 7396 merge patch of the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChange {
    pub name: Option<String>,
    pub fields: Map<String, Value>,
}

impl ContactChange {
    /// Checks the change on its own: a name that is not blank, field names
    /// and values a list column could hold.
    fn check(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            if name.trim().is_empty() {
                return Err("a contact's name cannot be blank".into());
            }
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(format!("a name has at most {MAX_NAME_CHARS} characters"));
            }
        }
        if self.name.is_none() && self.fields.is_empty() {
            return Err("nothing to change: give a `name` or `custom` fields".into());
        }
        for (key, value) in &self.fields {
            if key.trim().is_empty() || key.chars().count() > MAX_FIELD_NAME_CHARS {
                return Err(format!(
                    "field name {key:?}: 1 to {MAX_FIELD_NAME_CHARS} characters"
                ));
            }
            if matches!(value, Value::Array(_) | Value::Object(_)) {
                return Err(format!(
                    "field `{key}`: a string, number, boolean or null (to remove it)"
                ));
            }
        }
        Ok(())
    }

    /// The record's custom fields (JSON text) with the change merged in.
    fn merged_into(&self, custom_json: &str) -> Result<String, String> {
        let mut fields = match serde_json::from_str::<Value>(custom_json) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        for (key, value) in &self.fields {
            if value.is_null() {
                fields.remove(key);
            } else {
                fields.insert(key.clone(), value.clone());
            }
        }
        let text = Value::Object(fields).to_string();
        if text.len() > MAX_CUSTOM_JSON_BYTES {
            return Err(format!(
                "the contact's fields would take {} bytes; at most {MAX_CUSTOM_JSON_BYTES}",
                text.len()
            ));
        }
        Ok(text)
    }
}

impl Dialer {
    /// `agent` changes the contact of the record it handles now.
    pub(super) fn change_contact(
        &mut self,
        agent: &str,
        change: ContactChange,
    ) -> Result<(), CommandError> {
        change.check().map_err(CommandError::Invalid)?;
        let lease = self.handled_lease(agent)?;
        let custom_json = change
            .merged_into(&lease.custom_json)
            .map_err(CommandError::Invalid)?;
        if let Some(name) = &change.name {
            lease.name = name.trim().to_string();
        }
        lease.custom_json = custom_json.clone();
        let record = lease.record_id;
        self.effects.push_back(Effect::UpdateContact {
            record,
            name: change.name.map(|n| n.trim().to_string()),
            custom_json,
        });
        Ok(())
    }

    /// The lease of the record `agent` handles: on its preview screen, its
    /// call (from the reservation), or its wrap-up.
    fn handled_lease(&mut self, agent: &str) -> Result<&mut Lease, CommandError> {
        let entry = self
            .agents
            .get(agent)
            .ok_or_else(|| CommandError::UnknownAgent(agent.to_string()))?;
        let call = entry.session.current_call();
        let wrapping_up = matches!(entry.session.state(), AgentState::WrapUp { .. });
        if let Some(campaign) = self.preview_campaign_of(agent)
            && let Some(preview) = self
                .live
                .get_mut(&campaign)
                .and_then(|live| live.previews.get_mut(agent))
        {
            return Ok(&mut preview.lease);
        }
        if let Some(call) = call
            && let Some(entry) = self.calls.get_mut(&call)
        {
            return Ok(&mut entry.lease);
        }
        if wrapping_up && let Some(record) = self.awaiting_disposition.get_mut(agent) {
            return Ok(&mut record.lease);
        }
        Err(CommandError::Unavailable(format!(
            "agent `{agent}` handles no contact now (no record on screen, no call, no wrap-up)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(name: Option<&str>, fields: Value) -> ContactChange {
        ContactChange {
            name: name.map(str::to_string),
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn fields_are_merged_set_and_removed() {
        let c = change(None, json!({"email": "a@b.test", "plan": null, "age": 42}));
        c.check().unwrap();
        let merged = c.merged_into(r#"{"plan":"gold","city":"Leeds"}"#).unwrap();
        let merged: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(
            merged,
            json!({"city": "Leeds", "email": "a@b.test", "age": 42})
        );
        // Fields that were not an object (an old import) start afresh.
        assert_eq!(
            c.merged_into("oops").unwrap(),
            r#"{"age":42,"email":"a@b.test"}"#
        );
    }

    #[test]
    fn a_change_a_list_column_could_not_hold_is_refused() {
        assert!(change(Some("  "), json!({})).check().is_err());
        assert!(
            change(None, json!({})).check().is_err(),
            "nothing to change"
        );
        assert!(change(None, json!({"": "x"})).check().is_err());
        assert!(change(None, json!({"nested": {"a": 1}})).check().is_err());
        assert!(change(None, json!({"list": [1]})).check().is_err());
        assert!(change(Some(&"x".repeat(201)), json!({})).check().is_err());
        assert!(change(Some("Ann Lee"), json!({})).check().is_ok());
        let huge = change(None, json!({"notes": "x".repeat(20_000)}));
        assert!(huge.check().is_ok());
        assert!(huge.merged_into("{}").is_err());
    }
}
