//! Module instances: one module built with one set of board parameters.
//!
//! A module's *effective* params are its own `params` plus those of
//! everything it depends on (their install keys are in its key, so it varies
//! with them). The command line names targets and modules; each is resolved
//! against a target's `params`, and every module of its closure becomes the
//! instance identified by (module, effective param values). Two targets that
//! give a module the same values share one instance (one build, one
//! artifact); different values give separate instances with separate build
//! dirs, state dirs and artifacts. A module without effective params has one
//! instance, shared by all targets, exactly as before variants existed.
//!
//! The decision a reader may question: a file param is identified by its
//! **content** (BLAKE3), never its path, so the same config under another
//! path is the same instance and the same key; the path only reaches the
//! commands through `$STRATA_PARAM_<NAME>`. The variant id (12 hex of a hash
//! of the effective values) names the instance's directories; it is
//! deterministic, so a later run finds the same dirs.

pub mod history;

use crate::fingerprint::{self, ModuleKeys};
use crate::graph::Graph;
use crate::manifest::{ManifestError, Module, ParamValue, Project};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One module with one set of effective params.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Index into [`Project::modules`].
    pub module: usize,
    /// The variant id (None: the module has no effective params).
    pub variant: Option<String>,
    /// Effective params, sorted by name, as the first target asking gave them.
    pub params: Vec<(String, ParamValue)>,
    /// What the key holds for each of the module's *own* params:
    /// (input name, value) where files are content hashes.
    pub own_inputs: Vec<(String, String)>,
    /// `name` or `name@variant`: what reports and `--json` events call it.
    pub label: String,
    /// `<name>-<version>` or `<name>-<version>@<variant>`.
    pub dir_name: String,
}

impl Instance {
    /// The variant id, for `strata graph --json` (`null` when None).
    pub fn variant_id(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// The module this is an instance of.
    pub fn module<'p>(&self, project: &'p Project) -> &'p Module {
        &project.modules[self.module]
    }

    /// The shared, unpacked and patched source tree: `build/<name>-<version>/`.
    pub fn source_dir(&self, project: &Project) -> PathBuf {
        project.module_build_dir(self.module(project))
    }

    /// Where configure/build/install run (`$STRATA_BUILD_DIR`): the source
    /// tree itself for a module without params, else `build/<name>-<version>@<variant>/`.
    pub fn build_dir(&self, project: &Project) -> PathBuf {
        project.settings.build_dir.join(&self.dir_name)
    }

    /// strata's state for the source tree (unpack and patch stamps).
    pub fn source_state(&self, project: &Project) -> PathBuf {
        project.module_state_dir(&self.module(project).dir_name())
    }

    /// strata's state for this instance: stamps, logs, destdir, sysroot.
    /// The same dir as [`Instance::source_state`] when there is no variant.
    pub fn state(&self, project: &Project) -> PathBuf {
        project.module_state_dir(&self.dir_name)
    }

    /// `$STRATA_DESTDIR`: what the instance installed.
    pub fn destdir(&self, project: &Project) -> PathBuf {
        self.state(project).join("destdir")
    }

    /// `$STRATA_SYSROOT`: hardlinks to its dependencies' destdirs.
    pub fn sysroot(&self, project: &Project) -> PathBuf {
        self.state(project).join("sysroot")
    }

    /// `$STRATA_HOST`: hardlinks to its `host = true` dependencies' destdirs;
    /// its `bin/` comes first on the commands' PATH.
    pub fn host_prefix(&self, project: &Project) -> PathBuf {
        self.state(project).join("host")
    }

    /// The commands' `$HOME`: per instance, emptied before each configure.
    pub fn home(&self, project: &Project) -> PathBuf {
        self.state(project).join("home")
    }

    /// The commands' `$TMPDIR`: per instance, emptied before each command.
    pub fn tmp(&self, project: &Project) -> PathBuf {
        self.state(project).join("tmp")
    }

    /// Where its configure/build/install logs go.
    pub fn logs(&self, project: &Project) -> PathBuf {
        self.state(project).join("logs")
    }

    /// The state paths a stamp check reads.
    pub fn stamp_dirs(&self, project: &Project) -> fingerprint::StampDirs {
        fingerprint::StampDirs {
            source: self.source_state(project),
            instance: self.state(project),
            tree: self.build_dir(project),
            source_tree: self.source_dir(project),
        }
    }
}

/// One name from the command line and the instances it resolved to.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    /// The target whose params were used (None: no target had to be asked).
    pub target: Option<String>,
    /// Whether `name` is a target (else a module).
    pub is_target: bool,
    /// The instances named (not their dependencies).
    pub roots: Vec<usize>,
}

/// The instances a command works on, their DAG and their keys.
#[derive(Debug, Clone)]
pub struct Instances {
    pub list: Vec<Instance>,
    /// Dependency graph over `list` (indices into it).
    pub graph: Graph,
    /// Keys of every instance, indexed like `list`.
    pub keys: Vec<ModuleKeys>,
    pub requests: Vec<Request>,
}

impl Instances {
    /// Every instance named on the command line (without dependencies).
    pub fn selection(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self
            .requests
            .iter()
            .flat_map(|r| r.roots.iter().copied())
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// The target whose params instance `i` was made with: that of the
    /// first request whose closure holds it.
    pub fn target_of(&self, i: usize) -> Option<&str> {
        self.requests
            .iter()
            .find(|r| self.graph.closure(&r.roots).contains(&i))
            .and_then(|r| r.target.as_deref())
    }

    /// Instances of the module called `name`.
    pub fn of_module(&self, project: &Project, name: &str) -> Vec<usize> {
        (0..self.list.len())
            .filter(|&i| self.list[i].module(project).name == name)
            .collect()
    }
}

/// Each module's effective param names: its own plus its dependencies'.
fn effective_names(project: &Project, graph: &Graph) -> Vec<Vec<String>> {
    let mut eff: Vec<Vec<String>> = vec![Vec::new(); project.modules.len()];
    for &i in &graph.order {
        let mut names: Vec<String> = project.modules[i].params.clone();
        for &d in &graph.deps[i] {
            names.extend(eff[d].iter().cloned());
        }
        names.sort();
        names.dedup();
        eff[i] = names;
    }
    eff
}

/// What a param value contributes to keys and ids: (kind, value or hash).
fn encode(
    project: &Project,
    name: &str,
    v: &ParamValue,
) -> Result<(String, String), ManifestError> {
    match v {
        ParamValue::Value(s) => Ok((format!("param {name}"), s.clone())),
        ParamValue::Dir { rel, abs } => {
            let digest = crate::manifest::overrides::tree_digest(abs).map_err(|e| {
                ManifestError::new(
                    Path::new("strata.toml"),
                    format!("param {name}: cannot read directory {rel}: {e}"),
                )
                .help(format!(
                    "the directory is relative to the project root {}; fix the path or its permissions",
                    project.root.display()
                ))
            })?;
            Ok((format!("param {name} dir"), digest))
        }
        ParamValue::File { rel, abs } => {
            let bytes = std::fs::read(abs).map_err(|e| {
                ManifestError::new(
                    Path::new("strata.toml"),
                    format!("param {name}: cannot read {rel}: {e}"),
                )
                .help(format!(
                    "the file is relative to the project root {}; fix the path or its permissions",
                    project.root.display()
                ))
            })?;
            Ok((
                format!("param {name} file"),
                blake3::hash(&bytes).to_hex().to_string(),
            ))
        }
    }
}

/// Resolves command-line names (targets first, then modules; none means the
/// target `default`) to instances, and computes their keys. A module named
/// on its own takes its params from the target `default`, if there is one.
pub fn instantiate(
    project: &Project,
    graph: &Graph,
    names: &[String],
) -> Result<Instances, ManifestError> {
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
    let mut b = Builder::new(project, graph);
    for name in &names {
        if let Some(mods) = project.targets.get(name) {
            let roots: Vec<usize> = mods
                .iter()
                .map(|m| project.index_of(m).expect("validated"))
                .collect();
            b.request(name, Some(name), true, &roots)?;
        } else if let Some(i) = project.index_of(name) {
            let target = project.targets.contains_key("default").then_some("default");
            b.request(name, target, false, &[i])?;
        } else {
            return Err(crate::graph::unknown_name(project, name));
        }
    }
    b.finish()
}

/// The instances of a set of modules (a `[layer.NAME]`), with the params of
/// target `target` (None: modules without params only).
pub fn instantiate_modules(
    project: &Project,
    graph: &Graph,
    name: &str,
    target: Option<&str>,
    roots: &[usize],
) -> Result<Instances, ManifestError> {
    let mut b = Builder::new(project, graph);
    b.request(name, target, target == Some(name), roots)?;
    b.finish()
}

struct Builder<'a> {
    project: &'a Project,
    graph: &'a Graph,
    eff: Vec<Vec<String>>,
    list: Vec<Instance>,
    deps: Vec<Vec<usize>>,
    keys: Vec<ModuleKeys>,
    by_id: HashMap<(usize, Option<String>), usize>,
    requests: Vec<Request>,
}

impl<'a> Builder<'a> {
    fn new(project: &'a Project, graph: &'a Graph) -> Self {
        Builder {
            project,
            graph,
            eff: effective_names(project, graph),
            list: Vec::new(),
            deps: Vec::new(),
            keys: Vec::new(),
            by_id: HashMap::new(),
            requests: Vec::new(),
        }
    }

    fn request(
        &mut self,
        name: &str,
        target: Option<&str>,
        is_target: bool,
        roots: &[usize],
    ) -> Result<(), ManifestError> {
        let project = self.project;
        let empty = BTreeMap::new();
        let values = target
            .and_then(|t| project.target_params.get(t))
            .unwrap_or(&empty);
        let mut encoded: HashMap<String, (String, String)> = HashMap::new();
        // Module index → its instance under this request.
        let mut here: HashMap<usize, usize> = HashMap::new();
        for m in self.graph.closure(roots) {
            let module = &project.modules[m];
            for p in &module.params {
                if values.contains_key(p) {
                    continue;
                }
                return Err(missing_param(module, p, name, target, is_target));
            }
            let mut params = Vec::new();
            let mut id = blake3::Hasher::new();
            id.update(b"strata-variant;1;");
            for p in &self.eff[m] {
                let v = &values[p];
                if !encoded.contains_key(p) {
                    encoded.insert(p.clone(), encode(project, p, v)?);
                }
                let (k, val) = &encoded[p];
                for field in [k.as_bytes(), val.as_bytes()] {
                    id.update(&(field.len() as u64).to_le_bytes());
                    id.update(field);
                }
                params.push((p.clone(), v.clone()));
            }
            let variant = (!params.is_empty()).then(|| id.finalize().to_hex()[..12].to_string());
            let slot = (m, variant.clone());
            let idx = match self.by_id.get(&slot) {
                Some(&idx) => idx,
                None => {
                    let dep_instances: Vec<usize> =
                        self.graph.deps[m].iter().map(|d| here[d]).collect();
                    let own_inputs: Vec<(String, String)> =
                        module.params.iter().map(|p| encoded[p].clone()).collect();
                    let dep_keys: Vec<(&str, &str)> = dep_instances
                        .iter()
                        .map(|&d| {
                            (
                                project.modules[self.list[d].module].name.as_str(),
                                self.keys[d].install_key(),
                            )
                        })
                        .collect();
                    let keys = fingerprint::module_keys(project, module, &dep_keys, &own_inputs)
                        .map_err(|e| {
                            ManifestError::new(&module.manifest_path, e.to_string())
                                .help("fix the file or its permissions")
                        })?;
                    let (label, dir_name) = match &variant {
                        None => (module.name.clone(), module.dir_name()),
                        Some(v) => (
                            format!("{}@{v}", module.name),
                            format!("{}@{v}", module.dir_name()),
                        ),
                    };
                    let idx = self.list.len();
                    self.list.push(Instance {
                        module: m,
                        variant,
                        params,
                        own_inputs,
                        label,
                        dir_name,
                    });
                    self.deps.push(dep_instances);
                    self.keys.push(keys);
                    self.by_id.insert(slot, idx);
                    idx
                }
            };
            here.insert(m, idx);
        }
        self.requests.push(Request {
            name: name.to_string(),
            target: target.map(str::to_string),
            is_target,
            roots: roots.iter().map(|r| here[r]).collect(),
        });
        Ok(())
    }

    fn finish(self) -> Result<Instances, ManifestError> {
        let n = self.list.len();
        let mut dependents = vec![Vec::new(); n];
        for (i, ds) in self.deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        // Dependencies are always created before their dependents, so
        // creation order is a dependency order.
        let graph = Graph {
            deps: self.deps,
            dependents,
            order: (0..n).collect(),
        };
        Ok(Instances {
            list: self.list,
            graph,
            keys: self.keys,
            requests: self.requests,
        })
    }
}

fn missing_param(
    module: &Module,
    param: &str,
    name: &str,
    target: Option<&str>,
    is_target: bool,
) -> ManifestError {
    let manifest = Path::new("strata.toml");
    let example = format!("{param} = \"value\" (or {param} = {{ file = \"path/to/file\" }})");
    match target {
        Some(t) => ManifestError::new(
            manifest,
            format!(
                "module `{}` uses param `{param}`, which target `{t}` does not set",
                module.name
            ),
        )
        .help(format!(
            "add it to [target.{t}] in strata.toml: params = {{ {example} }}{}",
            if is_target {
                String::new()
            } else {
                format!(" (module `{name}` named alone takes target `{t}`'s params)")
            }
        )),
        None => ManifestError::new(
            manifest,
            format!(
                "module `{}` uses param `{param}`, and `{name}` was named without a target to take it from",
                module.name
            ),
        )
        .help(format!(
            "name a target that sets {param} (strata build TARGET), or add [target.default] with params = {{ {example} }} to strata.toml"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// a uses P; b depends on a; c has no params. t1 and t3 give P the
    /// same value (t3 also sets Q, which nobody uses); t2 another.
    fn project() -> (tempfile::TempDir, Project, Graph) {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w(
            "strata.toml",
            "[project]\nname = \"t\"\n\
             [target.t1]\nmodules = [\"b\", \"c\"]\nparams = { P = { file = \"one.cfg\" } }\n\
             [target.t2]\nmodules = [\"b\", \"c\"]\nparams = { P = { file = \"two.cfg\" } }\n\
             [target.t3]\nmodules = [\"b\"]\nparams = { P = { file = \"sub/copy.cfg\" }, Q = \"x\" }\n\
             [target.none]\nmodules = [\"b\"]\n",
        );
        w("one.cfg", "1");
        w("two.cfg", "2");
        w("sub/copy.cfg", "1");
        let sha = "0".repeat(64);
        let module = |name: &str, extra: &str| {
            format!(
                "name = \"{name}\"\nversion = \"1\"\nurl = \"file:///nowhere/{name}.tar\"\nsha256 = \"{sha}\"\n{extra}\n"
            )
        };
        w("modules/a.toml", &module("a", "params = [\"P\"]"));
        w("modules/b.toml", &module("b", "depends = [\"a\"]"));
        w("modules/c.toml", &module("c", ""));
        let project = crate::manifest::load(dir.path()).unwrap();
        let graph = Graph::new(&project).unwrap();
        (dir, project, graph)
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn instances_are_per_distinct_effective_values() {
        let (_d, p, g) = project();
        let inst = instantiate(&p, &g, &names(&["t1", "t2", "t3"])).unwrap();
        let count = |m: &str| inst.of_module(&p, m).len();
        // c has no params: one instance; a and b (through a) two each.
        assert_eq!((count("a"), count("b"), count("c")), (2, 2, 1));
        assert!(inst.list[inst.of_module(&p, "c")[0]].variant.is_none());
        // t1 and t3 (same content at another path, plus an unused param) share.
        assert_eq!(inst.requests[0].roots[0], inst.requests[2].roots[0]);
        assert_ne!(inst.requests[0].roots[0], inst.requests[1].roots[0]);
        // b has no params of its own, yet varies through a's install key.
        let b = inst.of_module(&p, "b");
        assert_ne!(inst.keys[b[0]].install_key(), inst.keys[b[1]].install_key());
        assert_eq!(
            inst.keys[b[0]].get(crate::fingerprint::Step::Patch).key,
            inst.keys[b[1]].get(crate::fingerprint::Step::Patch).key,
            "one source for every variant"
        );
        // The DAG is over instances, dependencies first.
        for (i, deps) in inst.graph.deps.iter().enumerate() {
            assert!(deps.iter().all(|&d| d < i));
        }
        let a_of_b: Vec<usize> = b.iter().map(|&i| inst.graph.deps[i][0]).collect();
        assert_ne!(a_of_b[0], a_of_b[1]);
    }

    #[test]
    fn a_missing_param_names_module_param_and_target() {
        let (_d, p, g) = project();
        let e = instantiate(&p, &g, &names(&["none"])).unwrap_err();
        let text = format!("{e}");
        assert!(text.contains("module `a` uses param `P`"), "{text}");
        assert!(text.contains("target `none`"), "{text}");
        // A module without params needs no target.
        instantiate(&p, &g, &names(&["c"])).unwrap();
    }
}
