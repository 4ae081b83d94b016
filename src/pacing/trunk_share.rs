//! A trunk shared by several dialer nodes (`[trunk] shared_by_nodes`): how
//! its lines are divided. Each node claims its part about once a second
//! through the store, which serialises the claims; this is the rule the
//! claim applies, with no I/O.
//!
//! Every node is entitled to a max-min fair part of the lines by what it
//! wants (the calls it holds plus those its pacers asked for and could not
//! start); lines nobody wants are split evenly as headroom, so a node whose
//! campaign just started can dial at once. A node is never granted lines
//! another node holds: those are freed by that node's next claim (which
//! sees this node's demand) and as its calls end. Nothing is taken from a
//! call in progress, so the sum of the grants never exceeds the trunk.

/// What a node asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrunkDemand {
    /// Customer calls it holds now.
    pub in_use: u32,
    /// Calls it would hold if it could start every call its pacers want:
    /// `in_use` plus the unmet demand.
    pub wanted: u32,
}

/// Another node's last claim, as the store holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeClaim {
    pub demand: TrunkDemand,
    pub granted: u32,
}

impl NodeClaim {
    /// Lines this node may be using: its grant, or more while calls begun
    /// under a larger grant go on.
    pub fn held(&self) -> u32 {
        self.granted.max(self.demand.in_use)
    }
}

/// This node's part of a shared trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrunkShare {
    /// Customer calls this node may hold at once.
    pub lines: u32,
    /// Nodes sharing the trunk now (this one included): the calls per
    /// second are divided evenly among them.
    pub nodes: u32,
}

impl TrunkShare {
    /// This node's part of the trunk's calls per second.
    pub fn calls_per_second(&self, trunk_cps: f64) -> f64 {
        trunk_cps / f64::from(self.nodes.max(1))
    }
}

/// The lines a node wanting `mine` may hold on a trunk of `max_lines`
/// while the other live nodes hold and want `others`.
pub fn divide(max_lines: u32, mine: TrunkDemand, others: &[NodeClaim]) -> TrunkShare {
    let nodes = others.len() as u32 + 1;
    // Max-min fairness by demand: the smallest demands are met first, the
    // rest share what remains evenly (an indivisible remainder goes to the
    // others first: every node claims with itself last).
    let wants: Vec<u32> = others
        .iter()
        .map(|o| o.demand.wanted)
        .chain(std::iter::once(mine.wanted))
        .collect();
    let shares = super::dial_rate::max_min_fair(max_lines, &wants, 0);
    let mut entitled = shares.last().copied().unwrap_or(0);
    // What nobody asked for is headroom, evenly.
    let left = max_lines.saturating_sub(shares.iter().sum());
    entitled += left / nodes;
    let held_elsewhere: u32 = others.iter().map(NodeClaim::held).sum();
    TrunkShare {
        lines: entitled.min(max_lines.saturating_sub(held_elsewhere)),
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(in_use: u32, wanted: u32) -> TrunkDemand {
        TrunkDemand { in_use, wanted }
    }

    fn claim(in_use: u32, wanted: u32, granted: u32) -> NodeClaim {
        NodeClaim {
            demand: demand(in_use, wanted),
            granted,
        }
    }

    #[test]
    fn a_node_alone_has_the_whole_trunk() {
        let share = divide(30, demand(0, 0), &[]);
        assert_eq!(
            share,
            TrunkShare {
                lines: 30,
                nodes: 1
            }
        );
    }

    #[test]
    fn idle_nodes_split_the_trunk_as_headroom() {
        assert_eq!(divide(30, demand(0, 0), &[claim(0, 0, 15)]).lines, 15);
        assert_eq!(
            divide(31, demand(0, 0), &[claim(0, 0, 0), claim(0, 0, 0)]).lines,
            10
        );
    }

    #[test]
    fn a_small_demand_is_met_and_the_rest_goes_to_the_larger_one() {
        // The other node wants 4 of 30: this one is entitled to 26 and gets
        // them once the other holds only its 4.
        assert_eq!(divide(30, demand(10, 40), &[claim(4, 4, 4)]).lines, 26);
        // While the other still holds 15 (its last grant), only 15 are free.
        assert_eq!(divide(30, demand(10, 40), &[claim(4, 4, 15)]).lines, 15);
    }

    #[test]
    fn two_busy_nodes_get_half_each() {
        assert_eq!(divide(30, demand(20, 45), &[claim(10, 45, 10)]).lines, 15);
        // The other node's grant shrinks at its next claim, but its calls
        // in progress keep their lines until they end.
        assert_eq!(divide(30, demand(15, 45), &[claim(20, 45, 15)]).lines, 10);
    }

    #[test]
    fn the_grants_never_exceed_the_trunk() {
        // Claims replayed in turn by three nodes with moving demands: after
        // each claim the lines held (grants, or calls above them) fit.
        let max = 23;
        let mut nodes = [claim(0, 0, 0), claim(0, 0, 0), claim(0, 0, 0)];
        let mut seed = 7u64;
        for step in 0..3000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let i = step % 3;
            let others: Vec<NodeClaim> = (0..3).filter(|&j| j != i).map(|j| nodes[j]).collect();
            // Calls in use never exceed what the node held; demand moves.
            let in_use = ((seed >> 33) as u32 % 40).min(nodes[i].held());
            let wanted = in_use + (seed >> 40) as u32 % 30;
            let share = divide(max, demand(in_use, wanted), &others);
            nodes[i] = claim(in_use, wanted, share.lines);
            let held: u32 = nodes.iter().map(NodeClaim::held).sum();
            assert!(held <= max, "step {step}: {nodes:?}");
        }
    }

    #[test]
    fn calls_per_second_are_divided_evenly() {
        let share = TrunkShare { lines: 5, nodes: 4 };
        assert!((share.calls_per_second(20.0) - 5.0).abs() < 1e-9);
    }
}
