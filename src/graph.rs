//! The module dependency graph: topological order, cycle reporting, and the
//! selection of what a command works on (targets or single modules plus
//! everything they depend on).

use crate::manifest::{ManifestError, Project, closest};
use std::collections::BTreeSet;
use std::path::Path;

/// The validated DAG over [`Project::modules`] (indices into that vector).
#[derive(Debug, Clone)]
pub struct Graph {
    /// `deps[i]`: direct dependencies of module i.
    pub deps: Vec<Vec<usize>>,
    /// `dependents[i]`: modules that directly depend on module i.
    pub dependents: Vec<Vec<usize>>,
    /// All modules in dependency order (dependencies first).
    pub order: Vec<usize>,
}

impl Graph {
    /// Builds the graph, failing with the full cycle when there is one.
    pub fn new(project: &Project) -> Result<Graph, ManifestError> {
        let n = project.modules.len();
        let mut deps = vec![Vec::new(); n];
        let mut dependents = vec![Vec::new(); n];
        for (i, m) in project.modules.iter().enumerate() {
            for d in &m.depends {
                let j = project
                    .index_of(d)
                    .expect("dependencies were validated by the manifest loader");
                if !deps[i].contains(&j) {
                    deps[i].push(j);
                    dependents[j].push(i);
                }
            }
        }
        // Depth-first search with colours; a grey node reached again closes a cycle.
        let mut colour = vec![0u8; n];
        let mut order = Vec::with_capacity(n);
        let mut stack: Vec<usize> = Vec::new();
        for start in 0..n {
            if colour[start] == 0 {
                visit(start, &deps, &mut colour, &mut order, &mut stack).map_err(|cycle| {
                    let names: Vec<&str> = cycle
                        .iter()
                        .map(|&i| project.modules[i].name.as_str())
                        .collect();
                    let first = &project.modules[cycle[0]];
                    ManifestError::new(
                        &first.manifest_path,
                        format!("dependency cycle: {}", names.join(" → ")),
                    )
                    .help("remove one of these `depends` entries to break the cycle")
                })?;
            }
        }
        Ok(Graph {
            deps,
            dependents,
            order,
        })
    }

    /// `roots` and everything they depend on, in dependency order.
    pub fn closure(&self, roots: &[usize]) -> Vec<usize> {
        let mut wanted = vec![false; self.deps.len()];
        let mut todo: Vec<usize> = roots.to_vec();
        while let Some(i) = todo.pop() {
            if !wanted[i] {
                wanted[i] = true;
                todo.extend(&self.deps[i]);
            }
        }
        self.order.iter().copied().filter(|&i| wanted[i]).collect()
    }

    /// Every module that `i` depends on, directly or not (not `i` itself),
    /// in dependency order.
    pub fn transitive_deps(&self, i: usize) -> Vec<usize> {
        let mut c = self.closure(&self.deps[i]);
        c.retain(|&j| j != i);
        c
    }

    /// Every module that depends on `i`, directly or not.
    pub fn transitive_dependents(&self, i: usize) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        let mut todo = self.dependents[i].clone();
        while let Some(j) = todo.pop() {
            if out.insert(j) {
                todo.extend(&self.dependents[j]);
            }
        }
        out
    }
}

fn visit(
    i: usize,
    deps: &[Vec<usize>],
    colour: &mut [u8],
    order: &mut Vec<usize>,
    stack: &mut Vec<usize>,
) -> Result<(), Vec<usize>> {
    colour[i] = 1;
    stack.push(i);
    for &d in &deps[i] {
        match colour[d] {
            0 => visit(d, deps, colour, order, stack)?,
            1 => {
                let pos = stack
                    .iter()
                    .position(|&s| s == d)
                    .expect("grey is on stack");
                let mut cycle = stack[pos..].to_vec();
                cycle.push(d);
                return Err(cycle);
            }
            _ => {}
        }
    }
    stack.pop();
    colour[i] = 2;
    order.push(i);
    Ok(())
}

/// Resolves command-line names (targets first, then modules) to module
/// indices. No names means the target `default`.
pub fn select(project: &Project, names: &[String]) -> Result<Vec<usize>, ManifestError> {
    let manifest = Path::new("strata.toml");
    let names: Vec<String> = if names.is_empty() {
        if !project.targets.contains_key("default") {
            return Err(ManifestError::new(manifest, "no target named `default`")
                .help("add [target.default] modules = [...] to strata.toml, or name a target or module"));
        }
        vec!["default".to_string()]
    } else {
        names.to_vec()
    };
    let mut out = BTreeSet::new();
    for name in &names {
        if let Some(mods) = project.targets.get(name) {
            out.extend(mods.iter().map(|m| project.index_of(m).expect("validated")));
        } else if let Some(i) = project.index_of(name) {
            out.insert(i);
        } else {
            return Err(unknown_name(project, name));
        }
    }
    Ok(out.into_iter().collect())
}

/// The error for a command-line name that is neither a target nor a module,
/// with the closest name as a hint.
pub fn unknown_name(project: &Project, name: &str) -> ManifestError {
    let candidates = project
        .targets
        .keys()
        .map(String::as_str)
        .chain(project.modules.iter().map(|m| m.name.as_str()));
    let err = ManifestError::new(
        std::path::Path::new("strata.toml"),
        format!("`{name}` is neither a target nor a module"),
    );
    match closest(name, candidates) {
        Some(best) => err.help(format!("did you mean `{best}`?")),
        None => err.help("`strata graph` lists the modules; targets are the [target.*] tables"),
    }
}
