//! The staged CI plan: the job DAG derived from what targets share.
//!
//! Every module instance of every target is placed in exactly one stage,
//! by the set of targets whose closure holds it: an instance only one
//! target needs belongs to that target's own job (`build-<target>`); the
//! instances a set of two or more targets share make a *seed* stage that
//! those targets' jobs require. A dependency is needed by every target that
//! needs its dependent, so its set is a superset: seeds only ever require
//! seeds of wider sets, and the stages form a DAG by construction. The part
//! of a seed that narrower seeds need (a toolchain under a fork's own
//! toolchain) is split off into a stage of its own, so a fork's seed waits
//! for the toolchain only, never for the userspace all boards share.
//!
//! Each instance is in one stage, so a cold workflow builds it once, and a
//! stage's cache holds its own artifacts only. The plan is a pure function
//! of the manifest: the generator writes it into the config, and `strata ci
//! stage` recomputes it inside the job. A config older than the manifest is
//! never wrong, only slower: a stage's build builds whatever its closure
//! lacks; [`Plan::digest`] lets the job say the config is out of date.

use crate::graph::Graph;
use crate::instance::{self, Instances};
use crate::manifest::{ManifestError, Project};
use std::collections::{BTreeMap, BTreeSet};

/// One job of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The job's name: `seed-<module>…` or `build-<target>`.
    pub name: String,
    /// Targets whose closure holds this stage's instances.
    pub users: Vec<String>,
    /// The module of each of its instances (one instance per module:
    /// a target's closure has one instance of each module).
    pub modules: Vec<String>,
    /// Stages (indices into [`Plan::stages`]) it requires, transitively reduced.
    pub requires: Vec<usize>,
    /// `Some(target)` for a target's own job (which also installs it).
    pub board: Option<String>,
}

impl Stage {
    /// The target whose params build this stage's instances (any of its
    /// users gives the same instances).
    pub fn target(&self) -> &str {
        self.board.as_deref().unwrap_or(&self.users[0])
    }
}

/// The stages in dependency order (seeds of wider sets first, targets' own
/// jobs last).
#[derive(Debug, Clone)]
pub struct Plan {
    pub stages: Vec<Stage>,
}

/// An instance as the planner sees it, across all targets.
struct Node {
    module: String,
    users: BTreeSet<String>,
    deps: BTreeSet<String>,
}

/// Computes the plan for every target of the project.
pub fn plan(project: &Project, graph: &Graph) -> Result<Plan, ManifestError> {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for t in project.targets.keys() {
        let inst = instance::instantiate(project, graph, std::slice::from_ref(t))?;
        for (i, it) in inst.list.iter().enumerate() {
            let key = inst.keys[i].install_key().to_string();
            let deps: BTreeSet<String> = inst.graph.deps[i]
                .iter()
                .map(|&d| inst.keys[d].install_key().to_string())
                .collect();
            let n = nodes.entry(key).or_insert_with(|| Node {
                module: it.module(project).name.clone(),
                users: BTreeSet::new(),
                deps,
            });
            n.users.insert(t.clone());
        }
    }
    Ok(group(&nodes))
}

/// Groups instances (by install key) into stages.
fn group(nodes: &BTreeMap<String, Node>) -> Plan {
    // Seed sets, widest first; then each target's own.
    let mut sets: Vec<BTreeSet<String>> = nodes
        .values()
        .filter(|n| n.users.len() > 1)
        .map(|n| n.users.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    sets.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    let mut members: Vec<(Vec<String>, Option<String>, BTreeSet<String>)> = Vec::new();
    for s in &sets {
        let keys: BTreeSet<String> = nodes
            .iter()
            .filter(|(_, n)| &n.users == s)
            .map(|(k, _)| k.clone())
            .collect();
        // What narrower seeds need of this one: split off, first.
        let narrower: Vec<&String> = nodes
            .iter()
            .filter(|(_, n)| n.users.len() > 1 && n.users.len() < s.len() && n.users.is_subset(s))
            .map(|(k, _)| k)
            .collect();
        let needed = closure_within(nodes, &narrower, &keys);
        let rest: BTreeSet<String> = keys.difference(&needed).cloned().collect();
        let users: Vec<String> = s.iter().cloned().collect();
        for part in [needed, rest] {
            if !part.is_empty() {
                members.push((users.clone(), None, part));
            }
        }
    }
    let targets: BTreeSet<&String> = nodes.values().flat_map(|n| n.users.iter()).collect();
    for t in targets {
        let keys: BTreeSet<String> = nodes
            .iter()
            .filter(|(_, n)| n.users.len() == 1 && n.users.contains(t))
            .map(|(k, _)| k.clone())
            .collect();
        members.push((vec![t.clone()], Some(t.clone()), keys));
    }
    let stage_of: BTreeMap<&String, usize> = members
        .iter()
        .enumerate()
        .flat_map(|(i, m)| m.2.iter().map(move |k| (k, i)))
        .collect();
    let mut direct: Vec<BTreeSet<usize>> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.2.iter()
                .flat_map(|k| nodes[k].deps.iter())
                .map(|d| stage_of[d])
                .filter(|&s| s != i)
                .collect()
        })
        .collect();
    // A board's job needs every seed its target's closure touches.
    for (i, m) in members.iter().enumerate() {
        if let Some(t) = &m.1 {
            for (j, o) in members.iter().enumerate() {
                if o.1.is_none() && o.0.contains(t) {
                    direct[i].insert(j);
                }
            }
        }
    }
    let mut used = BTreeSet::new();
    let stages = members
        .iter()
        .enumerate()
        .map(|(i, (users, board, keys))| Stage {
            name: stage_name(nodes, board.as_deref(), keys, &mut used),
            users: users.clone(),
            modules: keys
                .iter()
                .map(|k| nodes[k].module.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            requires: reduce(&direct, i),
            board: board.clone(),
        })
        .collect();
    Plan { stages }
}

/// The keys of `within` that `from` (and their dependencies) reach.
fn closure_within(
    nodes: &BTreeMap<String, Node>,
    from: &[&String],
    within: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&String> = from.to_vec();
    let mut out = BTreeSet::new();
    while let Some(k) = todo.pop() {
        if !seen.insert(k) {
            continue;
        }
        if within.contains(k) {
            out.insert(k.clone());
        }
        todo.extend(nodes[k].deps.iter());
    }
    out
}

/// `direct[i]` without the stages another requirement already reaches.
fn reduce(direct: &[BTreeSet<usize>], i: usize) -> Vec<usize> {
    let reach = |from: usize| -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(s) = todo.pop() {
            for &d in &direct[s] {
                if seen.insert(d) {
                    todo.push(d);
                }
            }
        }
        seen
    };
    direct[i]
        .iter()
        .copied()
        .filter(|&d| !direct[i].iter().any(|&o| o != d && reach(o).contains(&d)))
        .collect()
}

/// `build-<target>`, or `seed-<module>[-and-N]` (N: its other modules)
/// named by the module all the others build on, else by the first that
/// nothing in the stage depends on; made unique with `-2`, `-3`.
fn stage_name(
    nodes: &BTreeMap<String, Node>,
    board: Option<&str>,
    keys: &BTreeSet<String>,
    used: &mut BTreeSet<String>,
) -> String {
    let base = match board {
        Some(t) => format!("build-{}", job_word(t)),
        None => {
            let inside = |k: &String| keys.iter().filter(|o| nodes[k].deps.contains(*o)).count();
            let bottoms: Vec<&String> = keys.iter().filter(|k| inside(k) == 0).collect();
            // One module under all the others (a toolchain) names the
            // stage; else the first of those nothing in it depends on.
            let pick = if bottoms.len() == 1 {
                nodes[bottoms[0]].module.as_str()
            } else {
                keys.iter()
                    .filter(|k| !keys.iter().any(|o| nodes[o].deps.contains(*k)))
                    .map(|k| nodes[k].module.as_str())
                    .min()
                    .unwrap_or("stage")
            };
            match keys.len() {
                1 => format!("seed-{}", job_word(pick)),
                n => format!("seed-{}-and-{}", job_word(pick), n - 1),
            }
        }
    };
    let mut name = base.clone();
    let mut n = 1;
    while !used.insert(name.clone()) {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
}

/// `s` with every character outside `[A-Za-z0-9_.-]` as `-`.
fn job_word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl Plan {
    /// The stage called `name`.
    pub fn get(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Every stage stage `i` requires, directly or not, in plan order.
    pub fn ancestors(&self, i: usize) -> Vec<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = self.stages[i].requires.clone();
        while let Some(r) = todo.pop() {
            if seen.insert(r) {
                todo.extend(self.stages[r].requires.iter().copied());
            }
        }
        seen.into_iter().collect()
    }

    /// Whether any stage requires stage `i`.
    pub fn has_dependents(&self, i: usize) -> bool {
        self.stages.iter().any(|s| s.requires.contains(&i))
    }

    /// 16 hex over the plan's shape (names, users, modules, requirements),
    /// not its keys: a changed source keeps the plan, a changed graph
    /// changes it.
    pub fn digest(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"strata-stage-plan;1;");
        for s in &self.stages {
            let req: Vec<&str> = s
                .requires
                .iter()
                .map(|&r| self.stages[r].name.as_str())
                .collect();
            let line = format!(
                "{}|{}|{}|{}\n",
                s.name,
                s.users.join(","),
                s.modules.join(","),
                req.join(",")
            );
            h.update(line.as_bytes());
        }
        h.finalize().to_hex()[..16].to_string()
    }
}

/// The instances of stage `s` (its modules with its target's params) and
/// their dependencies.
pub fn instances(project: &Project, graph: &Graph, s: &Stage) -> Result<Instances, ManifestError> {
    if s.board.is_some() {
        return instance::instantiate(project, graph, &[s.target().to_string()]);
    }
    let roots: Vec<usize> = s
        .modules
        .iter()
        .filter_map(|m| project.index_of(m))
        .collect();
    instance::instantiate_modules(project, graph, &s.name, Some(s.target()), &roots)
}

/// The install keys of the stage's own instances (not its dependencies').
pub fn own_keys(project: &Project, inst: &Instances, s: &Stage) -> BTreeSet<String> {
    (0..inst.list.len())
        .filter(|&i| s.modules.contains(&inst.list[i].module(project).name))
        .map(|i| inst.keys[i].install_key().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(module: &str, users: &[&str], deps: &[&str]) -> (String, Node) {
        (
            format!("k-{module}"),
            Node {
                module: module.into(),
                users: users.iter().map(|s| s.to_string()).collect(),
                deps: deps.iter().map(|d| format!("k-{d}")).collect(),
            },
        )
    }

    #[test]
    fn heads_shape_gives_toolchain_then_fork_seeds_then_boards() {
        let all = ["a1", "a2", "b1", "b2"];
        let nodes: BTreeMap<String, Node> = [
            node("musl", &all, &[]),
            node("busybox", &all, &["musl"]),
            node("cb-tc-a", &["a1", "a2"], &["musl"]),
            node("cb-tc-b", &["b1", "b2"], &["musl"]),
            node("coreboot-a1", &["a1"], &["cb-tc-a"]),
            node("coreboot-a2", &["a2"], &["cb-tc-a"]),
            node("coreboot-b1", &["b1"], &["cb-tc-b"]),
            node("linux-b2", &["b2"], &["busybox"]),
            node("coreboot-b2", &["b2"], &["cb-tc-b"]),
        ]
        .into_iter()
        .collect();
        let p = group(&nodes);
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "seed-musl",
                "seed-busybox",
                "seed-cb-tc-a",
                "seed-cb-tc-b",
                "build-a1",
                "build-a2",
                "build-b1",
                "build-b2"
            ]
        );
        let req = |n: &str| -> Vec<&str> {
            p.get(n)
                .unwrap()
                .requires
                .iter()
                .map(|&r| p.stages[r].name.as_str())
                .collect()
        };
        assert_eq!(req("seed-musl"), Vec::<&str>::new());
        assert_eq!(req("seed-busybox"), ["seed-musl"]);
        assert_eq!(req("seed-cb-tc-a"), ["seed-musl"]);
        assert_eq!(req("build-a1"), ["seed-busybox", "seed-cb-tc-a"]);
        assert_eq!(req("build-b2"), ["seed-busybox", "seed-cb-tc-b"]);
        // Every instance in exactly one stage.
        let mut all_mods: Vec<&str> = p
            .stages
            .iter()
            .flat_map(|s| s.modules.iter().map(String::as_str))
            .collect();
        all_mods.sort_unstable();
        assert_eq!(all_mods.len(), nodes.len());
        all_mods.dedup();
        assert_eq!(all_mods.len(), nodes.len());
    }

    #[test]
    fn plan_digest_follows_shape_only() {
        let a: BTreeMap<String, Node> = [node("m", &["x", "y"], &[])].into_iter().collect();
        let mut b: BTreeMap<String, Node> = BTreeMap::new();
        b.insert(
            "other-key".into(),
            Node {
                module: "m".into(),
                users: ["x", "y"].iter().map(|s| s.to_string()).collect(),
                deps: BTreeSet::new(),
            },
        );
        assert_eq!(group(&a).digest(), group(&b).digest());
        let c: BTreeMap<String, Node> = [node("m", &["x"], &[])].into_iter().collect();
        assert_ne!(group(&a).digest(), group(&c).digest());
    }
}
