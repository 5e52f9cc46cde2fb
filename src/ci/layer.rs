//! strata layers: `[layer.NAME] modules = [...]`. A layer is saved with
//! everything that makes it self-consistent: the packages, build dirs and
//! state dirs (`build/.strata/modules/…`: stamps, staged install trees) of
//! its module instances *and of all their dependencies*. So no layer can lack `packages/` or a dependency, and a
//! restored layer whose keys still match is fresh: nothing in it is
//! downloaded, extracted or patched again. Stamps are content keys, not
//! mtimes, so a restored layer can never disagree with its files.

use crate::fingerprint::{self, Step};
use crate::graph::Graph;
use crate::instance::{self, Instances};
use crate::manifest::Project;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("no layer named `{name}` in strata.toml{}\n  hint: declare it as [layer.{name}] modules = [...]", hint.as_ref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default())]
    Unknown { name: String, hint: Option<String> },
    #[error(
        "layer `{layer}`: module {module} is not built at its current key ({why})\n  hint: run `strata build {module}` before saving the layer"
    )]
    NotBuilt {
        layer: String,
        module: String,
        why: String,
    },
    #[error("layer `{layer}`: {why}")]
    Params { layer: String, why: String },
    #[error("layer `{layer}`: {} is outside the project root {}\n  hint: keep packages-dir and build-dir inside the project to cache them as a layer", path.display(), root.display())]
    Outside {
        layer: String,
        path: PathBuf,
        root: PathBuf,
    },
}

/// The instances of layer `name` plus everything they depend on, in
/// dependency order. A target with no layer of its name is a layer of its
/// own; a layer takes its params from the target of its name, else from the
/// target `default` (so each board's variants can be a layer).
pub fn closure(project: &Project, graph: &Graph, name: &str) -> Result<Instances, LayerError> {
    let (mods, target) = if let Some(mods) = project.layers.get(name) {
        let target = if project.targets.contains_key(name) {
            Some(name)
        } else {
            project.targets.contains_key("default").then_some("default")
        };
        (mods, target)
    } else if let Some(mods) = project.targets.get(name) {
        (mods, Some(name))
    } else {
        return Err(LayerError::Unknown {
            name: name.into(),
            hint: crate::manifest::closest(name, project.layers.keys().map(String::as_str))
                .map(str::to_string),
        });
    };
    let roots: Vec<usize> = mods.iter().filter_map(|m| project.index_of(m)).collect();
    instance::instantiate_modules(project, graph, name, target, &roots).map_err(|e| {
        LayerError::Params {
            layer: name.into(),
            why: e.to_string(),
        }
    })
}

/// The digest of the install keys of the layer's closure (32 hex).
pub fn digest(project: &Project, graph: &Graph, name: &str) -> Result<String, LayerError> {
    Ok(digest_of(&closure(project, graph, name)?))
}

/// The digest of the install keys of `inst` (32 hex): a layer's, or a CI
/// stage's with its dependencies.
pub fn digest_of(inst: &Instances) -> String {
    let mut lines: Vec<String> = (0..inst.list.len())
        .map(|i| format!("{}={}\n", inst.list[i].label, inst.keys[i].install_key()))
        .collect();
    lines.sort();
    let mut h = blake3::Hasher::new();
    h.update(b"strata-layer;1;");
    for l in &lines {
        h.update(l.as_bytes());
    }
    h.finalize().to_hex()[..32].to_string()
}

/// `NAME-<digest>-<cache-version>`, the layer's exact cache key.
pub fn key(project: &Project, graph: &Graph, name: &str) -> Result<String, LayerError> {
    Ok(format!(
        "{name}-{}-{}",
        digest(project, graph, name)?,
        project.cache_version
    ))
}

/// The paths (relative to the project root) a layer is saved with: per
/// instance its package, source tree, build dir and their state dirs under
/// `build/.strata/modules/` (stamps travel with the trees they describe).
/// Every instance of the closure must be built at its current key.
pub fn paths(project: &Project, graph: &Graph, name: &str) -> Result<Vec<PathBuf>, LayerError> {
    let root = &project.root;
    let rel = |p: &Path| -> Result<PathBuf, LayerError> {
        p.strip_prefix(root)
            .map(Path::to_path_buf)
            .map_err(|_| LayerError::Outside {
                layer: name.into(),
                path: p.to_path_buf(),
                root: root.clone(),
            })
    };
    let packages = &project.settings.packages_dir;
    let inst = closure(project, graph, name)?;
    let mut out = Vec::new();
    for (i, it) in inst.list.iter().enumerate() {
        let m = it.module(project);
        let status = fingerprint::module_status(&it.stamp_dirs(project), &inst.keys[i]);
        if let Some(step) = status.first_stale {
            let why = status
                .reasons
                .first()
                .map_or_else(|| format!("{step} is stale"), ToString::to_string);
            return Err(LayerError::NotBuilt {
                layer: name.into(),
                module: it.label.clone(),
                why,
            });
        }
        // A restored module (from the artifact cache) has no package: its
        // build dir is complete without one.
        let package = packages.join(&m.file);
        if package.is_file() {
            out.push(rel(&package)?);
            let record = crate::fetch::record_path(packages, &m.file);
            if record.is_file() {
                out.push(rel(&record)?);
            }
        }
        debug_assert!(fingerprint::stamp_key(&it.state(project), Step::Install).is_some());
        let mut dirs = vec![it.build_dir(project), it.state(project)];
        if it.variant.is_some() {
            // The shared source, if this checkout has it (a restored
            // variant does not need it).
            dirs.push(it.source_dir(project));
            dirs.push(it.source_state(project));
        }
        for d in dirs {
            let r = rel(&d)?;
            if d.exists() && !out.contains(&r) {
                out.push(r);
            }
        }
    }
    Ok(out)
}
