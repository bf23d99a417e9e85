//! Rendezvous (highest-random-weight) hashing: which seed hosts are responsible for a task.
//!
//! Every scheduler instance must pick the same seeds for a task without talking to the others,
//! so the score is a fixed, documented function of `(host id, task id)` only: FNV-1a 64 over
//! `host_id ‖ 0xff ‖ task_id`, then the splitmix64 finaliser (FNV alone mixes the last bytes
//! poorly). Removing a seed only moves the tasks that seed was responsible for; adding one moves
//! about `1/n` of the tasks to it. No allocation beyond the output, O(n log n) in the number of
//! live seeds (hundreds at most).

/// The rendezvous score of `host_id` for `task_id`; higher wins.
pub fn score(host_id: &str, task_id: &str) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = FNV_OFFSET;
    // 0xff never occurs in UTF-8, so ("ab","c") and ("a","bc") hash differently.
    for &b in host_id
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(task_id.as_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    // splitmix64 finaliser.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Sorts `hosts` by descending score for `task_id` (ties by host id, so the order is total).
pub fn rank<'a>(task_id: &str, hosts: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(u64, &str)> = hosts.into_iter().map(|h| (score(h, task_id), h)).collect();
    scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().map(|(_, h)| h).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(i: u32) -> String {
        format!("{i:064x}")
    }

    #[test]
    fn deterministic_and_order_independent() {
        let a = rank(&task(7), ["s1", "s2", "s3", "s4"]);
        let b = rank(&task(7), ["s4", "s3", "s2", "s1"]);
        assert_eq!(a, b);
        assert_eq!(score("s1", &task(7)), score("s1", &task(7)));
    }

    #[test]
    fn spreads_tasks_and_moves_few_on_removal() {
        let seeds = ["s1", "s2", "s3", "s4"];
        let mut counts = [0u32; 4];
        let mut moved = 0;
        for i in 0..4000 {
            let t = task(i);
            let top = rank(&t, seeds)[0];
            let idx = seeds.iter().position(|s| *s == top).expect("a seed");
            counts[idx] += 1;
            // Remove s4: only the tasks s4 owned may move.
            let top3 = rank(&t, seeds[..3].iter().copied())[0];
            if top3 != top {
                assert_eq!(top, "s4", "a task not owned by the removed seed moved");
                moved += 1;
            }
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread: {counts:?}");
        }
        assert_eq!(moved, counts[3]);
    }
}
