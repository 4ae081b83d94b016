//! The call guide (SPEC §7): a campaign's question-and-answer script with
//! branching, shown to the agent during the call; the agent's answers are
//! saved with the attempt.
//!
//! A guide is a list of questions, the first one the start. A question
//! either offers answers, each of which may name the next question, or
//! takes free text and may name its own next question; no next ends the
//! guide. The configuration is checked once ([`problems`]); the answers an
//! agent sends are checked against the branching ([`check_answers`]), so a
//! saved path is always one the script allows.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Longest free-text answer kept.
pub const MAX_FREE_TEXT: usize = 2000;

/// One question of a campaign's guide (`[[campaign.guide]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuideQuestion {
    pub id: String,
    pub question: String,
    /// The choices; none: the agent types the answer.
    #[serde(default)]
    pub answers: Vec<GuideChoice>,
    /// After a free-text answer: the next question (none ends the guide).
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuideChoice {
    pub text: String,
    /// The question this answer leads to (none ends the guide).
    #[serde(default)]
    pub next: Option<String>,
}

/// An answer the agent gave, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GivenAnswer {
    pub question: String,
    pub answer: String,
}

/// What is wrong with a guide as configured (empty: nothing).
pub fn problems(guide: &[GuideQuestion]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids = HashSet::new();
    for question in guide {
        if question.id.trim().is_empty() {
            problems.push("a question has an empty id".to_string());
        } else if !ids.insert(question.id.as_str()) {
            problems.push(format!("question `{}` is defined twice", question.id));
        }
        if question.question.trim().is_empty() {
            problems.push(format!("question `{}` has no text", question.id));
        }
        let mut texts = HashSet::new();
        for choice in &question.answers {
            if choice.text.trim().is_empty() {
                problems.push(format!("question `{}` has an empty answer", question.id));
            } else if !texts.insert(choice.text.as_str()) {
                problems.push(format!(
                    "question `{}` offers the answer `{}` twice",
                    question.id, choice.text
                ));
            }
        }
        if !question.answers.is_empty() && question.next.is_some() {
            problems.push(format!(
                "question `{}` has answers and a `next`: give each answer its own `next`",
                question.id
            ));
        }
    }
    for question in guide {
        for next in successors(question) {
            if !ids.contains(next) {
                problems.push(format!(
                    "question `{}` leads to `{next}`, which is not a question of this guide",
                    question.id
                ));
            }
        }
    }
    if problems.is_empty()
        && let Some(cycle) = find_cycle(guide)
    {
        problems.push(format!(
            "the guide loops back to question `{cycle}`: a guide must always end"
        ));
    }
    problems
}

fn successors(question: &GuideQuestion) -> impl Iterator<Item = &str> {
    question
        .answers
        .iter()
        .filter_map(|c| c.next.as_deref())
        .chain(question.next.as_deref())
}

/// A question reachable from itself, if any (depth-first search).
fn find_cycle(guide: &[GuideQuestion]) -> Option<String> {
    let by_id: HashMap<&str, &GuideQuestion> = guide.iter().map(|q| (q.id.as_str(), q)).collect();
    // 0 unseen, 1 on the current path, 2 done.
    let mut mark: HashMap<&str, u8> = HashMap::new();
    for start in guide {
        let mut stack: Vec<(&str, Vec<&str>)> = Vec::new();
        if mark.get(start.id.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        mark.insert(&start.id, 1);
        stack.push((&start.id, successors(start).collect()));
        while let Some((id, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) => match mark.get(next).copied().unwrap_or(0) {
                    1 => return Some(next.to_string()),
                    0 => {
                        mark.insert(next, 1);
                        let following = by_id
                            .get(next)
                            .map(|q| successors(q).collect())
                            .unwrap_or_default();
                        stack.push((next, following));
                    }
                    _ => {}
                },
                None => {
                    mark.insert(id, 2);
                    stack.pop();
                }
            }
        }
    }
    None
}

/// Checks that `answers` follow the guide from its first question, each
/// answer one the question offers (or non-empty free text) and each next
/// question the one the previous answer leads to. The agent may stop
/// before the guide ends.
pub fn check_answers(guide: &[GuideQuestion], answers: &[GivenAnswer]) -> Result<(), String> {
    if answers.is_empty() {
        return Ok(());
    }
    let Some(first) = guide.first() else {
        return Err("this campaign has no call guide; send no guide answers".into());
    };
    let by_id: HashMap<&str, &GuideQuestion> = guide.iter().map(|q| (q.id.as_str(), q)).collect();
    let mut expected: Option<&GuideQuestion> = Some(first);
    for (i, given) in answers.iter().enumerate() {
        let Some(question) = expected else {
            return Err(format!(
                "the guide ended before answer {} (question `{}`)",
                i + 1,
                given.question
            ));
        };
        if given.question != question.id {
            return Err(format!(
                "answer {} is for question `{}`, but the guide asks `{}` there",
                i + 1,
                given.question,
                question.id
            ));
        }
        let next = if question.answers.is_empty() {
            let text = given.answer.trim();
            if text.is_empty() {
                return Err(format!("question `{}` needs an answer", question.id));
            }
            if text.chars().count() > MAX_FREE_TEXT {
                return Err(format!(
                    "the answer to `{}` is longer than {MAX_FREE_TEXT} characters",
                    question.id
                ));
            }
            question.next.as_deref()
        } else {
            let Some(choice) = question.answers.iter().find(|c| c.text == given.answer) else {
                let offered: Vec<&str> = question.answers.iter().map(|c| c.text.as_str()).collect();
                return Err(format!(
                    "`{}` is not an answer to `{}` (one of: {})",
                    given.answer,
                    question.id,
                    offered.join(", ")
                ));
            };
            choice.next.as_deref()
        };
        expected = next.and_then(|id| by_id.get(id).copied());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guide() -> Vec<GuideQuestion> {
        let text = r#"
[[guide]]
id = "interested"
question = "Is the customer interested?"
answers = [{ text = "Yes", next = "plan" }, { text = "No", next = "why" }]
[[guide]]
id = "plan"
question = "Which plan?"
answers = [{ text = "Gold" }, { text = "Silver" }]
[[guide]]
id = "why"
question = "Why not?"
"#;
        #[derive(Deserialize)]
        struct File {
            guide: Vec<GuideQuestion>,
        }
        toml::from_str::<File>(text).unwrap().guide
    }

    fn given(pairs: &[(&str, &str)]) -> Vec<GivenAnswer> {
        pairs
            .iter()
            .map(|(q, a)| GivenAnswer {
                question: q.to_string(),
                answer: a.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_well_formed_guide_has_no_problems() {
        assert_eq!(problems(&guide()), Vec::<String>::new());
        assert_eq!(problems(&[]), Vec::<String>::new());
    }

    #[test]
    fn broken_guides_are_explained() {
        let mut unknown = guide();
        unknown[1].answers[0].next = Some("nowhere".into());
        assert_eq!(
            problems(&unknown),
            vec!["question `plan` leads to `nowhere`, which is not a question of this guide"]
        );
        let mut looped = guide();
        looped[2].next = Some("interested".into());
        assert_eq!(
            problems(&looped),
            vec!["the guide loops back to question `interested`: a guide must always end"]
        );
        let mut twice = guide();
        twice[2].id = "plan".into();
        let found = problems(&twice);
        assert!(
            found.contains(&"question `plan` is defined twice".to_string()),
            "{found:?}"
        );
        let mut both = guide();
        both[0].next = Some("why".into());
        assert_eq!(problems(&both).len(), 1);
    }

    #[test]
    fn answers_must_follow_the_branches() {
        let guide = guide();
        assert_eq!(
            check_answers(&guide, &given(&[("interested", "Yes"), ("plan", "Gold")])),
            Ok(())
        );
        assert_eq!(
            check_answers(&guide, &given(&[("interested", "No"), ("why", "too dear")])),
            Ok(())
        );
        // Stopping early is allowed; nothing is too.
        assert_eq!(
            check_answers(&guide, &given(&[("interested", "Yes")])),
            Ok(())
        );
        assert_eq!(check_answers(&guide, &[]), Ok(()));
        // The wrong branch, an answer not offered, empty free text, past the end.
        assert!(
            check_answers(&guide, &given(&[("interested", "No"), ("plan", "Gold")]))
                .unwrap_err()
                .contains("the guide asks `why` there")
        );
        assert!(
            check_answers(&guide, &given(&[("interested", "Maybe")]))
                .unwrap_err()
                .contains("one of: Yes, No")
        );
        assert!(check_answers(&guide, &given(&[("interested", "No"), ("why", "  ")])).is_err());
        assert!(
            check_answers(
                &guide,
                &given(&[("interested", "Yes"), ("plan", "Gold"), ("why", "x")])
            )
            .unwrap_err()
            .contains("ended")
        );
        assert!(check_answers(&[], &given(&[("interested", "Yes")])).is_err());
    }

    proptest::proptest! {
        /// Random guides (ids and links from a small alphabet, so loops,
        /// dangling links and duplicates are common) and random answers:
        /// the checks always return, and a guide without problems accepts
        /// the path its own first choices take.
        #[test]
        fn any_guide_and_answers_are_checked_without_panicking(
            questions in proptest::collection::vec(
                ("[a-d]", proptest::collection::vec(("[xy]", proptest::option::of("[a-e]")), 0..3), proptest::option::of("[a-e]")),
                0..6,
            ),
            answers in proptest::collection::vec(("[a-e]", "[xyz ]{0,2}"), 0..6),
        ) {
            let guide: Vec<GuideQuestion> = questions
                .into_iter()
                .map(|(id, choices, next)| GuideQuestion {
                    question: format!("{id}?"),
                    id,
                    answers: choices
                        .into_iter()
                        .map(|(text, next)| GuideChoice { text, next })
                        .collect(),
                    next,
                })
                .collect();
            let given: Vec<GivenAnswer> = answers
                .into_iter()
                .map(|(question, answer)| GivenAnswer { question, answer })
                .collect();
            let found = problems(&guide);
            let _ = check_answers(&guide, &given);
            if found.is_empty() && !guide.is_empty() {
                // Follow the first choice (or a free-text answer) to the end.
                let mut path = Vec::new();
                let mut at = guide.first();
                while let Some(question) = at {
                    proptest::prop_assert!(path.len() <= guide.len(), "a loop got through");
                    let (answer, next) = match question.answers.first() {
                        Some(choice) => (choice.text.clone(), choice.next.clone()),
                        None => ("free text".to_string(), question.next.clone()),
                    };
                    path.push(GivenAnswer { question: question.id.clone(), answer });
                    at = next.and_then(|id| guide.iter().find(|q| q.id == id));
                }
                proptest::prop_assert_eq!(check_answers(&guide, &path), Ok(()));
            }
        }
    }
}
