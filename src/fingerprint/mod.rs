//! Step keys, stamps and the reasons a step is stale. This file holds
//! the keys; `stamps` reads and writes them on disk; `status` compares the
//! two and says why a step is stale.
//!
//! Every step of every module has a **key**: a BLAKE3 hash over a canonical,
//! length-prefixed encoding of its named inputs. The inputs of a step include
//! the key of the step before it, so the install key of a module is a pure
//! function of everything that went into it, dependencies' install keys
//! included. Keys never contain mtimes or absolute paths, which is why a
//! touched or relocated tree stays fresh.
//!
//! A **stamp** records a step's key and its named inputs. It is written only
//! after the step succeeded and removed before the step runs. The key sits on
//! the stamp's first line, so a fresh check reads one short line; the JSON
//! record is parsed only to explain a mismatch (cargo's fingerprints).

pub mod noop;
mod stamps;
mod status;
pub use stamps::*;
pub use status::*;

use crate::manifest::{Module, Project};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs;
use std::io;

/// Version of the key encoding. Changing how any key is computed, or adding an
/// input to any step, means bumping this, so old stamps read as stale instead
/// of as falsely fresh.
pub const KEY_VERSION: u32 = 2;

/// Version of the stamp file layout.
const STAMP_FORMAT: u32 = 1;

/// The steps of a module build, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Fetch,
    Unpack,
    Patch,
    Configure,
    Build,
    Install,
}

impl Step {
    /// All steps in order.
    pub const ALL: [Step; 6] = [
        Step::Fetch,
        Step::Unpack,
        Step::Patch,
        Step::Configure,
        Step::Build,
        Step::Install,
    ];

    /// The step's lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Step::Fetch => "fetch",
            Step::Unpack => "unpack",
            Step::Patch => "patch",
            Step::Configure => "configure",
            Step::Build => "build",
            Step::Install => "install",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One named input of a step: a short literal value or a hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    pub value: String,
}

impl Input {
    fn new(name: impl Into<String>, value: impl Into<String>) -> Input {
        Input {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A step's expected key and the inputs it was computed from.
#[derive(Clone, Debug)]
pub struct StepKey {
    pub step: Step,
    pub key: String,
    pub inputs: Vec<Input>,
}

impl StepKey {
    fn new(step: Step, inputs: Vec<Input>) -> StepKey {
        StepKey {
            step,
            key: hash_inputs(step, &inputs),
            inputs,
        }
    }
}

/// The canonical encoding: a domain tag, the key version, the step name, then
/// every input as length-prefixed name and value, in the order given.
pub fn hash_inputs(step: Step, inputs: &[Input]) -> String {
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"strata-step-key");
    field(&KEY_VERSION.to_le_bytes());
    field(step.name().as_bytes());
    field(&(inputs.len() as u64).to_le_bytes());
    for i in inputs {
        field(i.name.as_bytes());
        field(i.value.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// The expected keys of all six steps of one module.
#[derive(Clone, Debug)]
pub struct ModuleKeys {
    steps: Vec<StepKey>,
}

impl ModuleKeys {
    /// The key of `step`.
    pub fn get(&self, step: Step) -> &StepKey {
        &self.steps[step.index()]
    }

    /// The install key: the identity of the module's outputs.
    pub fn install_key(&self) -> &str {
        &self.get(Step::Install).key
    }
}

/// The inputs naming a module's declared source: its sum or commit, and
/// its package file.
fn source_inputs(m: &Module, source: &mut Vec<Input>) {
    if !m.has_source() {
        source.push(Input::new("source", "none"));
        return;
    }
    match &m.git {
        // The commit names the tree; the repository's identity (not its
        // URL) says where it is from; a `sha256` pin only verifies the
        // archive, so it is no input.
        Some(g) => source.extend([
            Input::new("source git", &g.identity),
            Input::new("source rev", &g.rev),
            Input::new("submodules", g.submodules.to_string()),
            Input::new("git archive format", crate::fetch::git::FORMAT),
        ]),
        None => source.push(Input::new("source sha256", &m.sha256)),
    }
    source.push(Input::new("file", &m.file));
}

/// Computes the keys of one module given its dependencies' install keys and
/// the key inputs of its own params (`param NAME` = value, or
/// `param NAME file` = BLAKE3 of the file's content; see `instance.rs`).
pub fn module_keys(
    project: &Project,
    m: &Module,
    deps: &[(&str, &str)],
    params: &[(String, String)],
) -> io::Result<ModuleKeys> {
    let mut source = vec![Input::new("cache-version", &project.cache_version)];
    if let Some(o) = &m.overridden {
        // strata.local.toml: the directory's content is the source (or the
        // output); no download, extra download or patch is used.
        source.push(Input::new(format!("override {}", o.kind.name()), &o.digest));
    } else {
        source_inputs(m, &mut source);
    }
    let fetch = StepKey::new(Step::Fetch, source.clone());
    let mut unpack_inputs = source;
    unpack_inputs.push(Input::new(
        "strip-components",
        m.strip_components.to_string(),
    ));
    // Extra downloads are placed into the tree at unpack: by pin and place.
    // A module without them has the keys it always had.
    for d in m.downloads.iter().filter(|_| m.overridden.is_none()) {
        // A `sha1-from` download's file is named by its source: the
        // pattern stands for it (the source itself is already an input).
        let file = match (&d.pin, d.file.is_empty()) {
            (crate::manifest::Pin::Sha1From(p), true) => format!("<{}>", p.path),
            _ => d.file.clone(),
        };
        let at = if d.dest.is_empty() {
            file
        } else {
            format!("{}/{file}", d.dest)
        };
        unpack_inputs.push(Input::new(format!("download {at}"), d.pin.label()));
    }
    let unpack = StepKey::new(Step::Unpack, unpack_inputs);
    let mut patch_inputs = vec![Input::new("step unpack", &unpack.key)];
    for p in m.patches.iter().filter(|_| m.overridden.is_none()) {
        let bytes = fs::read(&p.abs).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("module {}: cannot read patch {}: {e}", m.name, p.rel),
            )
        })?;
        // `-pN` enters the key only when it is not the default, so keys
        // of patches without a series option stay as they were.
        let name = match p.strip {
            1 => format!("patch {}", p.rel),
            n => format!("patch {} -p{n}", p.rel),
        };
        patch_inputs.push(Input::new(name, blake3::hash(&bytes).to_hex().to_string()));
    }
    let patch = StepKey::new(Step::Patch, patch_inputs);
    if m.is_fixed_output() && m.overridden.is_none() {
        return Ok(fixed_output_keys(project, m, fetch, unpack, patch));
    }
    let mut configure_inputs = vec![
        Input::new("step patch", &patch.key),
        Input::new("command configure", m.configure.as_deref().unwrap_or("")),
    ];
    for (k, v) in &m.env {
        configure_inputs.push(Input::new(format!("env {k}"), v));
    }
    // `pass-env` values reach the commands, so they are inputs; an unset
    // name is recorded under its own input name, so that unset and empty
    // differ.
    for (k, v) in crate::exec::environment::pass_env_values(&project.settings.pass_env) {
        configure_inputs.push(match v {
            Some(v) => Input::new(
                format!("pass-env {k}"),
                v.to_str().map_or_else(
                    || format!("bytes {}", hex::encode(v.as_encoded_bytes())),
                    str::to_string,
                ),
            ),
            None => Input::new(format!("pass-env {k} (unset)"), ""),
        });
    }
    for (name, value) in params {
        configure_inputs.push(Input::new(name, value));
    }
    let mut sorted_deps = deps.to_vec();
    sorted_deps.sort();
    for (name, key) in sorted_deps {
        configure_inputs.push(Input::new(format!("dependency {name}"), key));
    }
    let configure = StepKey::new(Step::Configure, configure_inputs);
    let build = StepKey::new(
        Step::Build,
        vec![
            Input::new("step configure", &configure.key),
            Input::new("command build", m.build.as_deref().unwrap_or("")),
        ],
    );
    let install = StepKey::new(
        Step::Install,
        vec![
            Input::new("step build", &build.key),
            Input::new("command install", m.install.as_deref().unwrap_or("")),
            Input::new("keep", m.keep.join("\n")),
        ],
    );
    Ok(ModuleKeys {
        steps: vec![fetch, unpack, patch, configure, build, install],
    })
}

/// The configure, build and install keys of a fixed-output module (Nix's
/// fixed-output derivation): its pinned outputs and nothing else. Its
/// commands, env, params, dependencies and source are not inputs: they are
/// how the pinned bytes are obtained, and the install is verified against
/// the pins, so a changed script that yields the same bytes is the same
/// artifact (and a cache hit), and one that yields other bytes fails.
fn fixed_output_keys(
    project: &Project,
    m: &Module,
    fetch: StepKey,
    unpack: StepKey,
    patch: StepKey,
) -> ModuleKeys {
    let mut inputs = vec![
        Input::new("cache-version", &project.cache_version),
        Input::new("fixed-output", "sha256"),
    ];
    for (path, sum) in &m.outputs {
        inputs.push(Input::new(format!("output {path}"), sum));
    }
    let configure = StepKey::new(Step::Configure, inputs);
    let build = StepKey::new(
        Step::Build,
        vec![Input::new("step configure", &configure.key)],
    );
    let install = StepKey::new(Step::Install, vec![Input::new("step build", &build.key)]);
    ModuleKeys {
        steps: vec![fetch, unpack, patch, configure, build, install],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(pairs: &[(&str, &str)]) -> Vec<Input> {
        pairs.iter().map(|(n, v)| Input::new(*n, *v)).collect()
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = inputs(&[("a", "1"), ("b", "2")]);
        let k = hash_inputs(Step::Build, &base);
        assert_ne!(
            k,
            hash_inputs(Step::Build, &inputs(&[("a", "1"), ("b", "3")]))
        );
        assert_ne!(
            k,
            hash_inputs(Step::Build, &inputs(&[("a", "2"), ("b", "2")]))
        );
        assert_ne!(k, hash_inputs(Step::Configure, &base));
        assert_ne!(k, hash_inputs(Step::Build, &inputs(&[("a", "1")])));
        assert_eq!(k, hash_inputs(Step::Build, &base));
    }

    #[test]
    fn encoding_is_length_prefixed() {
        // "ab"+"c" must not collide with "a"+"bc".
        let x = hash_inputs(Step::Build, &inputs(&[("ab", "c")]));
        let y = hash_inputs(Step::Build, &inputs(&[("a", "bc")]));
        assert_ne!(x, y);
    }
}
