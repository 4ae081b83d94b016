//! An agent's digits to the customer (`Command::SendDtmf`, `mid_call.rs`).

use std::time::Instant;

use super::dialer::{Command, CommandError};
use super::io::Effect;
use super::transfer_tests::{CONFIG, customer_with_an_agent_in, effects, ms};

fn digits(agent: &str, digits: &str) -> Command {
    Command::SendDtmf {
        agent: agent.into(),
        digits: digits.into(),
    }
}

#[test]
fn digits_go_to_the_customer_on_the_line_and_nowhere_else() {
    let t0 = Instant::now();
    let (mut dialer, call, agent, other) = customer_with_an_agent_in(CONFIG, t0);
    let view = |dialer: &super::dialer::Dialer, who: &str| {
        dialer
            .agent_view(who, t0 + ms(5_000))
            .unwrap()
            .customer_on_line
    };
    assert!(view(&dialer, &agent), "spliced: the keypad may be used");
    assert!(!view(&dialer, &other));
    dialer
        .handle_command(digits(&agent, "1 2#"), t0 + ms(5_000))
        .unwrap();
    assert_eq!(
        effects(&mut dialer),
        vec![Effect::SendDtmf {
            call,
            agent: agent.clone(),
            codes: vec![1, 2, 11],
        }]
    );
    let refused = dialer
        .handle_command(digits(&agent, "12x"), t0 + ms(5_100))
        .unwrap_err();
    assert!(
        matches!(&refused, CommandError::Invalid(why) if why.contains("`x` is not a DTMF digit")),
        "{refused}"
    );
    let refused = dialer
        .handle_command(digits(&other, "1"), t0 + ms(5_200))
        .unwrap_err();
    assert!(refused.to_string().contains("on_call"), "{refused}");
    dialer
        .handle_command(
            Command::Hold {
                agent: agent.clone(),
                on: true,
            },
            t0 + ms(6_000),
        )
        .unwrap();
    effects(&mut dialer);
    let refused = dialer
        .handle_command(digits(&agent, "1"), t0 + ms(6_100))
        .unwrap_err();
    assert!(refused.to_string().contains("on hold"), "{refused}");
    assert!(
        !effects(&mut dialer)
            .iter()
            .any(|e| matches!(e, Effect::SendDtmf { .. }))
    );
}
