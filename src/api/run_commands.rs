//! Start, pause and stop across the nodes sharing one store.
//!
//! A supervisor's start, pause or stop is carried out on the node that took
//! the request and kept in the store (`run_commands`); every other node
//! reads the new ones within [`RUN_COMMANDS_POLL`] and does the same to its
//! own copy of the campaign (its own agents, lines and pacer). Only the
//! commands given while a node runs are followed: a node that starts does
//! not replay the history, so a restart never starts dialing by itself, as
//! for a single node.
//!
//! Several supervisors on several nodes: the newest command (the highest
//! id) wins everywhere. A node applies another node's command only if it is
//! newer than every command it has seen for that campaign, its own
//! included, and it takes its own commands and the store's under one lock
//! (the admin lock), so a command it gave is never overtaken by an older one
//! read afterwards.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::engine::campaign_run::RunCommand;
use crate::store::StoredRunCommand;

/// How often a node reads the run commands the other nodes gave.
pub const RUN_COMMANDS_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// How far below the highest id seen a command may still appear: with
/// PostgreSQL a transaction that took an id first can commit last.
const LATE_COMMITS: i64 = 100;

/// Which of the stored run commands this node still has to carry out.
/// Pure bookkeeping: the store is read and the engine told by the caller.
#[derive(Debug)]
pub struct RunFollower {
    /// Commands up to this id were given before the node started: history.
    floor: i64,
    /// The highest id seen.
    highest: i64,
    /// Ids seen within `LATE_COMMITS` of the highest.
    seen: BTreeSet<i64>,
    /// Per campaign, the newest command id seen (this node's own included).
    newest: HashMap<String, i64>,
}

/// Another node's command to carry out here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    pub campaign: String,
    pub command: RunCommand,
    pub node: String,
}

impl RunFollower {
    /// `last`: the store's highest run command id when the node started.
    pub fn new(last: i64) -> Self {
        Self {
            floor: last,
            highest: last,
            seen: BTreeSet::new(),
            newest: HashMap::new(),
        }
    }

    /// The id to read the store's run commands after.
    pub fn read_after(&self) -> i64 {
        (self.highest - LATE_COMMITS).max(self.floor)
    }

    /// Takes what the store returned (`run_commands_after(read_after())`)
    /// and returns the commands of other nodes to carry out, at most one per
    /// campaign: its newest, when nothing newer was seen for it.
    pub fn take(&mut self, commands: &[StoredRunCommand], this_node: &str) -> Vec<Followed> {
        let mut newest_now: BTreeMap<&str, &StoredRunCommand> = BTreeMap::new();
        for command in commands {
            if command.id <= self.floor || !self.seen.insert(command.id) {
                continue;
            }
            self.highest = self.highest.max(command.id);
            let newest = self.newest.entry(command.campaign.clone()).or_insert(0);
            if command.id > *newest {
                *newest = command.id;
                newest_now.insert(&command.campaign, command);
            }
        }
        let keep_from = self.highest - LATE_COMMITS;
        self.seen.retain(|id| *id > keep_from);
        newest_now
            .into_values()
            // This node's own commands were carried out when they were given.
            .filter(|command| command.node != this_node)
            .filter_map(|command| {
                let Some(parsed) = RunCommand::from_name(&command.command) else {
                    tracing::warn!(
                        id = command.id,
                        command = %command.command,
                        "unknown run command in the store"
                    );
                    return None;
                };
                Some(Followed {
                    campaign: command.campaign.clone(),
                    command: parsed,
                    node: command.node.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(id: i64, campaign: &str, command: &str, node: &str) -> StoredRunCommand {
        StoredRunCommand {
            id,
            campaign: campaign.into(),
            command: command.into(),
            node: node.into(),
        }
    }

    #[test]
    fn the_history_before_the_node_started_is_not_replayed() {
        let mut follower = RunFollower::new(7);
        assert_eq!(follower.read_after(), 7);
        let old = [
            command(6, "spring", "start", "b"),
            command(7, "spring", "pause", "b"),
        ];
        assert!(follower.take(&old, "a").is_empty());
        let new = [command(8, "spring", "start", "b")];
        assert_eq!(
            follower.take(&new, "a"),
            vec![Followed {
                campaign: "spring".into(),
                command: RunCommand::Start,
                node: "b".into()
            }]
        );
        // Read again (the window looks back for late commits): not twice.
        assert!(follower.take(&new, "a").is_empty());
    }

    #[test]
    fn the_newest_command_wins_and_own_commands_are_not_redone() {
        let mut follower = RunFollower::new(0);
        // Node b started, then this node paused: nothing to do here.
        let batch = [
            command(1, "spring", "start", "b"),
            command(2, "spring", "pause", "a"),
        ];
        assert!(follower.take(&batch, "a").is_empty());
        // An older command committed late: overtaken, ignored.
        let late = [command(1, "spring", "stop", "c")];
        assert!(follower.take(&late, "a").is_empty());
        // Per campaign, only the newest of a batch.
        let batch = [
            command(3, "spring", "start", "b"),
            command(4, "summer", "start", "b"),
            command(5, "spring", "stop", "c"),
        ];
        let followed = follower.take(&batch, "a");
        let got: Vec<(&str, RunCommand)> = followed
            .iter()
            .map(|f| (f.campaign.as_str(), f.command))
            .collect();
        assert_eq!(
            got,
            vec![("spring", RunCommand::Stop), ("summer", RunCommand::Start)]
        );
    }

    #[test]
    fn a_late_commit_within_the_window_is_still_followed() {
        let mut follower = RunFollower::new(0);
        assert_eq!(
            follower
                .take(&[command(10, "spring", "start", "b")], "a")
                .len(),
            1
        );
        assert!(follower.read_after() < 10);
        // Id 9 of another campaign commits after 10 was read.
        let followed = follower.take(&[command(9, "summer", "pause", "c")], "a");
        assert_eq!(followed.len(), 1);
        assert_eq!(followed[0].campaign, "summer");
        // An unknown command word is skipped, not fatal.
        assert!(
            follower
                .take(&[command(11, "spring", "explode", "b")], "a")
                .is_empty()
        );
    }
}
