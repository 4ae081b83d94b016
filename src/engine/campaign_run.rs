//! A campaign's run state as supervisors drive it: loaded → running ↔
//! paused → stopped (→ running again). Only a running campaign dials.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Loaded,
    Running,
    Paused,
    Stopped,
}

impl RunState {
    pub fn name(self) -> &'static str {
        match self {
            RunState::Loaded => "loaded",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunCommand {
    Start,
    Pause,
    Stop,
}

impl RunCommand {
    pub fn name(self) -> &'static str {
        match self {
            RunCommand::Start => "start",
            RunCommand::Pause => "pause",
            RunCommand::Stop => "stop",
        }
    }

    /// The command `name()` gives; None for any other word.
    pub fn from_name(name: &str) -> Option<RunCommand> {
        [RunCommand::Start, RunCommand::Pause, RunCommand::Stop]
            .into_iter()
            .find(|command| command.name() == name)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("campaign is {state}; cannot {command} it")]
pub struct RunError {
    pub state: &'static str,
    pub command: &'static str,
}

/// The next state, or why the command does not apply. Repeating the
/// current state's command is accepted (idempotent for API retries).
pub fn transition(state: RunState, command: RunCommand) -> Result<RunState, RunError> {
    use RunCommand::*;
    use RunState::*;
    match (state, command) {
        (Loaded | Paused | Stopped | Running, Start) => Ok(Running),
        (Running | Paused, Pause) => Ok(Paused),
        (Loaded | Running | Paused | Stopped, Stop) => Ok(Stopped),
        (state @ (Loaded | Stopped), command @ Pause) => Err(RunError {
            state: state.name(),
            command: command.name(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        assert_eq!(
            transition(RunState::Loaded, RunCommand::Start),
            Ok(RunState::Running)
        );
        assert_eq!(
            transition(RunState::Running, RunCommand::Pause),
            Ok(RunState::Paused)
        );
        assert_eq!(
            transition(RunState::Paused, RunCommand::Start),
            Ok(RunState::Running)
        );
        assert_eq!(
            transition(RunState::Running, RunCommand::Stop),
            Ok(RunState::Stopped)
        );
        assert_eq!(
            transition(RunState::Running, RunCommand::Start),
            Ok(RunState::Running)
        );
        assert_eq!(
            transition(RunState::Loaded, RunCommand::Pause)
                .unwrap_err()
                .to_string(),
            "campaign is loaded; cannot pause it"
        );
    }
}
