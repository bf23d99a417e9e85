//! The workload: which tasks exist, how each is cut into pieces, and which piece each request
//! asks for next.
//!
//! Tasks come from a task list (`--tasks-file`: one `task_id content_length [piece_length
//! [digests]]` per line), from one `--task`, or from a hawker data dir (`--tasks-from-dir`).
//! Every piece of every task gets a global index (task order, then piece number); a request
//! draws a global index from the distribution:
//! - `uniform`: every piece equally likely;
//! - `zipf`: the piece of rank r (1-based) has probability proportional to `1 / r^s`, drawn
//!   exactly from a cumulative table. Ranks map to global indexes through a seeded affine
//!   permutation so the hot pieces are scattered across tasks and offsets instead of being the
//!   first pieces of the first task.
//!
//! Invariants: a workload has at least one piece; every task has a piece count that fits `u32`;
//! the zipf table is at most [`MAX_ZIPF_PIECES`] entries (8 bytes each: 32 MiB); every picker is
//! a deterministic function of (`seed`, stream number), so two runs with the same `--seed`,
//! connection count and thread count ask for the same pieces in the same order per connection.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

use hawker_shared::ids::TaskId;
use hawker_shared::layout::Layout;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The most tasks a workload may hold.
pub const MAX_TASKS: usize = 1_000_000;
/// The most pieces a zipf workload may hold (the table costs 8 bytes per piece).
pub const MAX_ZIPF_PIECES: u64 = 4 * 1024 * 1024;
/// The largest piece length dp-bench accepts, from a task list or from a server, in bytes.
pub const MAX_PIECE_BYTES: u64 = 1024 * 1024 * 1024;
/// The longest line a task list may have, in bytes (digests of 500 pieces take about 6 KiB).
pub const MAX_TASK_LINE_BYTES: usize = 1024 * 1024;

/// One task: its id, how it is cut into pieces and, when known, each piece's crc32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The 64-character lower-case hex task id.
    pub id: TaskId,
    /// Content length and piece length (the last piece holds the rest).
    pub layout: Layout,
    /// The crc32 (IEEE) of every piece, when the task list gives them.
    pub digests: Option<Vec<u32>>,
}

impl TaskSpec {
    /// Builds a task, taking Dragonfly's default piece length when `piece_length` is `None`.
    pub fn new(
        id: TaskId,
        content_length: u64,
        piece_length: Option<u64>,
        digests: Option<Vec<u32>>,
    ) -> Result<TaskSpec, String> {
        if let Some(p) = piece_length {
            if p == 0 || p > MAX_PIECE_BYTES {
                return Err(format!(
                    "task {id}: piece length {p} is outside 1..={MAX_PIECE_BYTES} bytes"
                ));
            }
        }
        let layout = match piece_length {
            Some(p) => Layout::new(content_length, p),
            None => Layout::try_for_content(content_length),
        }
        .map_err(|e| format!("task {id}: {e}"))?;
        if let Some(d) = &digests {
            if d.len() as u64 != u64::from(layout.piece_count()) {
                return Err(format!(
                    "task {id}: {} digests given for {} pieces",
                    d.len(),
                    layout.piece_count()
                ));
            }
        }
        Ok(TaskSpec {
            id,
            layout,
            digests,
        })
    }

    /// How many pieces the task has (0 for empty content).
    pub fn piece_count(&self) -> u32 {
        self.layout.piece_count()
    }

    /// The byte range `(offset, length)` of piece `number`, or `None` past the end.
    pub fn piece_range(&self, number: u32) -> Option<(u64, u64)> {
        self.layout.piece(number).map(|p| (p.offset, p.length))
    }

    /// The crc32 of piece `number`, when the task list gave it.
    pub fn digest(&self, number: u32) -> Option<u32> {
        self.digests.as_ref()?.get(number as usize).copied()
    }
}

/// How requests choose pieces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Every piece equally likely.
    Uniform,
    /// Piece of rank r has probability proportional to `1 / r^s`.
    Zipf {
        /// The exponent (1.0 is the classic web-cache skew).
        s: f64,
    },
}

/// A piece to ask for: index into [`Workload::tasks`] and piece number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceRef {
    /// Index into the workload's task list.
    pub task: u32,
    /// Piece number within the task.
    pub number: u32,
}

/// The tasks and the distribution over their pieces; shared read-only by all workers.
#[derive(Debug)]
pub struct Workload {
    tasks: Vec<TaskSpec>,
    /// `starts[i]` is the global index of task i's piece 0; ascending.
    starts: Vec<u64>,
    total_pieces: u64,
    dist: Dist,
    /// Zipf only: cumulative probabilities by rank, ending at 1.0.
    zipf_cdf: Vec<f64>,
    /// Affine rank -> global index permutation: `(rank * mul + add) % total_pieces`.
    perm_mul: u64,
    perm_add: u64,
    seed: u64,
}

impl Workload {
    /// Builds a workload; tasks with no pieces (empty content) are dropped.
    pub fn new(tasks: Vec<TaskSpec>, dist: Dist, seed: u64) -> Result<Workload, String> {
        if tasks.len() > MAX_TASKS {
            return Err(format!(
                "{} tasks is more than the limit of {MAX_TASKS}",
                tasks.len()
            ));
        }
        let tasks: Vec<TaskSpec> = tasks.into_iter().filter(|t| t.piece_count() > 0).collect();
        let mut starts = Vec::with_capacity(tasks.len());
        let mut total_pieces = 0u64;
        for t in &tasks {
            starts.push(total_pieces);
            total_pieces += u64::from(t.piece_count());
        }
        if total_pieces == 0 {
            return Err("the workload has no pieces (no tasks, or only empty ones)".into());
        }
        let zipf_cdf = match dist {
            Dist::Uniform => Vec::new(),
            Dist::Zipf { s } => {
                if !(s.is_finite() && s > 0.0 && s <= 10.0) {
                    return Err(format!("--zipf-s {s} is outside (0, 10]"));
                }
                if total_pieces > MAX_ZIPF_PIECES {
                    return Err(format!(
                        "zipf over {total_pieces} pieces is more than the limit of \
                         {MAX_ZIPF_PIECES}; use --dist uniform or fewer tasks"
                    ));
                }
                zipf_cdf(total_pieces, s)
            }
        };
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x05ee_d0f7_a5c5);
        let mut perm_mul = 1 + rng.random_range(0..total_pieces);
        while gcd(perm_mul, total_pieces) != 1 {
            perm_mul = perm_mul % total_pieces + 1;
        }
        let perm_add = rng.random_range(0..total_pieces);
        Ok(Workload {
            tasks,
            starts,
            total_pieces,
            dist,
            zipf_cdf,
            perm_mul,
            perm_add,
            seed,
        })
    }

    /// The tasks that have pieces, in list order.
    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    /// The number of pieces over all tasks.
    pub fn total_pieces(&self) -> u64 {
        self.total_pieces
    }

    /// The distribution.
    pub fn dist(&self) -> Dist {
        self.dist
    }

    /// The mean piece length over all pieces, in bytes.
    pub fn mean_piece_bytes(&self) -> f64 {
        let total: u64 = self.tasks.iter().map(|t| t.layout.content_length).sum();
        total as f64 / self.total_pieces as f64
    }

    /// A deterministic stream of picks, one per connection (`stream` = connection number).
    pub fn picker(&self, stream: u64) -> Picker {
        let seed = self.seed ^ stream.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Picker {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The piece with global index `global` (< total_pieces).
    pub fn piece_at(&self, global: u64) -> PieceRef {
        debug_assert!(global < self.total_pieces);
        let task = self.starts.partition_point(|&s| s <= global) - 1;
        PieceRef {
            task: task as u32,
            number: (global - self.starts[task]) as u32,
        }
    }

    /// The global index of the piece of zipf rank `rank` (0 = hottest).
    pub fn global_of_rank(&self, rank: u64) -> u64 {
        let mul = u128::from(rank) * u128::from(self.perm_mul) + u128::from(self.perm_add);
        (mul % u128::from(self.total_pieces)) as u64
    }

    fn draw(&self, rng: &mut SmallRng) -> u64 {
        match self.dist {
            Dist::Uniform => rng.random_range(0..self.total_pieces),
            Dist::Zipf { .. } => {
                let u: f64 = rng.random();
                let rank = self.zipf_cdf.partition_point(|&c| c <= u) as u64;
                self.global_of_rank(rank.min(self.total_pieces - 1))
            }
        }
    }
}

/// One connection's private stream of picks.
#[derive(Debug)]
pub struct Picker {
    rng: SmallRng,
}

impl Picker {
    /// The next piece to ask for.
    pub fn next(&mut self, workload: &Workload) -> PieceRef {
        let global = workload.draw(&mut self.rng);
        workload.piece_at(global)
    }
}

fn zipf_cdf(n: u64, s: f64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n as usize);
    let mut sum = 0.0f64;
    for rank in 1..=n {
        sum += (rank as f64).powf(-s);
        cdf.push(sum);
    }
    for c in &mut cdf {
        *c /= sum;
    }
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    cdf
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Parses a digest as written in a task list: `crc32:DECIMAL` or a bare decimal.
pub fn parse_list_digest(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("crc32:").unwrap_or(text);
    digits
        .parse::<u32>()
        .map_err(|_| format!("digest {text:?} is not crc32:DECIMAL"))
}

/// Parses one task-list line (already trimmed, not a comment):
/// `task_id content_length [piece_length|-] [digest,digest,...]`.
pub fn parse_task_line(line: &str) -> Result<TaskSpec, String> {
    let mut fields = line.split_ascii_whitespace();
    let id_text = fields.next().ok_or("empty line")?;
    let id = TaskId::parse(id_text.as_bytes())
        .map_err(|e| format!("task id {id_text:?}: {e} (want 64 lower-case hex digits)"))?;
    let content_length: u64 = fields
        .next()
        .ok_or("missing content_length")?
        .parse()
        .map_err(|_| "content_length is not a number".to_string())?;
    let piece_length = match fields.next() {
        None | Some("-") => None,
        Some(p) => Some(
            p.parse::<u64>()
                .map_err(|_| format!("piece_length {p:?} is not a number"))?,
        ),
    };
    let digests = match fields.next() {
        None | Some("-") => None,
        Some(list) => Some(
            list.split(',')
                .map(parse_list_digest)
                .collect::<Result<Vec<u32>, String>>()?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected field {extra:?}"));
    }
    TaskSpec::new(id, content_length, piece_length, digests)
}

/// Reads a task list from any reader; `name` is used in error messages.
pub fn read_task_list(reader: impl BufRead, name: &str) -> Result<Vec<TaskSpec>, String> {
    let mut tasks = Vec::new();
    let mut seen = HashSet::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{name}: {e}"))?;
        if line.len() > MAX_TASK_LINE_BYTES {
            return Err(format!(
                "{name}:{}: line longer than {MAX_TASK_LINE_BYTES} bytes",
                index + 1
            ));
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let task = parse_task_line(line).map_err(|e| format!("{name}:{}: {e}", index + 1))?;
        if !seen.insert(task.id) {
            return Err(format!(
                "{name}:{}: task {} listed twice",
                index + 1,
                task.id
            ));
        }
        tasks.push(task);
        if tasks.len() > MAX_TASKS {
            return Err(format!("{name}: more than {MAX_TASKS} tasks"));
        }
    }
    Ok(tasks)
}

/// Reads a task list file.
pub fn read_task_file(path: &Path) -> Result<Vec<TaskSpec>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    read_task_list(std::io::BufReader::new(file), &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn id(n: u8) -> TaskId {
        let text = format!("{:064x}", u64::from(n) + 1);
        TaskId::parse(text.as_bytes()).unwrap()
    }

    fn tasks(piece_counts: &[u64]) -> Vec<TaskSpec> {
        piece_counts
            .iter()
            .enumerate()
            .map(|(i, &n)| TaskSpec::new(id(i as u8), n * 1000 - 7, Some(1000), None).unwrap())
            .collect()
    }

    #[test]
    fn piece_ranges_follow_the_layout() {
        let t = TaskSpec::new(id(0), 2500, Some(1000), None).unwrap();
        assert_eq!(t.piece_count(), 3);
        assert_eq!(t.piece_range(0), Some((0, 1000)));
        assert_eq!(t.piece_range(2), Some((2000, 500)));
        assert_eq!(t.piece_range(3), None);
        let empty = TaskSpec::new(id(1), 0, Some(1000), None).unwrap();
        assert_eq!(empty.piece_count(), 0);
        // Default layout: 4 MiB pieces for small content.
        let d = TaskSpec::new(id(2), 10 << 20, None, None).unwrap();
        assert_eq!(d.layout.piece_length, 4 << 20);
        assert_eq!(d.piece_count(), 3);
    }

    #[test]
    fn uniform_covers_all_pieces() {
        let w = Workload::new(tasks(&[3, 1, 5, 2]), Dist::Uniform, 7).unwrap();
        assert_eq!(w.total_pieces(), 11);
        let mut seen = HashSet::new();
        let mut picker = w.picker(0);
        for _ in 0..2000 {
            let p = picker.next(&w);
            assert!(w.tasks()[p.task as usize].piece_range(p.number).is_some());
            seen.insert(p);
        }
        assert_eq!(seen.len(), 11);
    }

    #[test]
    fn global_indexes_map_to_every_piece_once() {
        let w = Workload::new(tasks(&[3, 1, 5, 2]), Dist::Zipf { s: 1.0 }, 3).unwrap();
        let pieces: HashSet<PieceRef> = (0..w.total_pieces()).map(|g| w.piece_at(g)).collect();
        assert_eq!(pieces.len(), 11);
        let ranks: HashSet<u64> = (0..w.total_pieces()).map(|r| w.global_of_rank(r)).collect();
        assert_eq!(ranks.len(), 11, "the rank permutation must be a bijection");
    }

    #[test]
    fn zipf_is_skewed() {
        let w = Workload::new(tasks(&[100, 100]), Dist::Zipf { s: 1.0 }, 11).unwrap();
        let mut counts: HashMap<PieceRef, u32> = HashMap::new();
        let mut picker = w.picker(0);
        let draws = 20_000;
        for _ in 0..draws {
            *counts.entry(picker.next(&w)).or_default() += 1;
        }
        let hottest = w.piece_at(w.global_of_rank(0));
        let hot = counts[&hottest];
        // H(200) ~ 5.88, so rank 1 has ~17% of draws; uniform would give 0.5%.
        assert!(hot > draws / 10, "hottest piece drawn {hot} times");
        let mut sorted: Vec<u32> = counts.values().copied().collect();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let top10: u32 = sorted.iter().take(10).sum();
        assert!(
            top10 > draws / 2,
            "top 10 of 200 pieces got {top10} of {draws}"
        );

        let u = Workload::new(tasks(&[100, 100]), Dist::Uniform, 11).unwrap();
        let mut ucounts: HashMap<PieceRef, u32> = HashMap::new();
        let mut upicker = u.picker(0);
        for _ in 0..draws {
            *ucounts.entry(upicker.next(&u)).or_default() += 1;
        }
        assert!(ucounts.values().all(|&c| c < draws / 50));
    }

    #[test]
    fn picks_are_deterministic_from_the_seed() {
        let draw = |seed: u64, stream: u64, dist: Dist| {
            let w = Workload::new(tasks(&[50, 70]), dist, seed).unwrap();
            let mut p = w.picker(stream);
            (0..100).map(|_| p.next(&w)).collect::<Vec<_>>()
        };
        for dist in [Dist::Uniform, Dist::Zipf { s: 1.2 }] {
            assert_eq!(draw(1, 0, dist), draw(1, 0, dist));
            assert_ne!(draw(1, 0, dist), draw(2, 0, dist));
            assert_ne!(draw(1, 0, dist), draw(1, 1, dist));
        }
    }

    #[test]
    fn task_lines_parse_and_reject() {
        let a = format!("{:064x}", 1);
        let t = parse_task_line(&format!("{a} 2500 1000 crc32:1,2,3")).unwrap();
        assert_eq!(t.digest(1), Some(2));
        assert_eq!(t.layout.piece_length, 1000);
        let t = parse_task_line(&format!("{a} 2500")).unwrap();
        assert_eq!(t.layout.piece_length, 4 << 20);
        assert!(parse_task_line(&format!("{a} 2500 1000 1,2")).is_err());
        assert!(parse_task_line(&format!("{a} x")).is_err());
        assert!(parse_task_line("abc 2500").is_err());
        assert!(parse_task_line(&format!("{a} 2500 0")).is_err());
        assert!(parse_task_line(&format!("{a} 2500 1000 - extra")).is_err());
        let list = format!("# comment\n\n{a} 10 5\n{a} 10\n");
        assert!(read_task_list(list.as_bytes(), "x")
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn empty_workloads_and_bad_exponents_are_refused() {
        assert!(Workload::new(Vec::new(), Dist::Uniform, 0).is_err());
        assert!(Workload::new(tasks(&[2]), Dist::Zipf { s: -1.0 }, 0).is_err());
        assert!(Workload::new(tasks(&[2]), Dist::Zipf { s: f64::NAN }, 0).is_err());
    }
}
