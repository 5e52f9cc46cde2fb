//! `strata graph`: the dependency graph in DOT (default) or, with `--json`,
//! the machine-readable closure documented in docs/json.md.
//!
//! The decision a reader may question: `--json` is the global flag that
//! elsewhere means JSON Lines events; here the whole answer is one JSON
//! document, because a graph is one value, not a stream. It is printed on
//! one line, as `cargo metadata` prints its document.

use super::{Failure, Global};
use crate::graph;
use crate::manifest::{Module, ParamValue};
use serde_json::{Value, json};

pub fn graph(g: &Global, names: &[String]) -> Result<(), Failure> {
    let l = g.load()?;
    if g.json {
        return graph_json(g, &l, names);
    }
    let modules = if names.is_empty() {
        l.graph.order.clone()
    } else {
        l.graph.closure(&graph::select(&l.project, names)?)
    };
    let mut out = String::from("digraph strata {\n    rankdir=LR;\n");
    for &i in &modules {
        let m = &l.project.modules[i];
        out.push_str(&format!(
            "    \"{}\" [label=\"{}\\n{}\"];\n",
            m.name, m.name, m.version
        ));
        for &d in &l.graph.deps[i] {
            out.push_str(&format!(
                "    \"{}\" -> \"{}\";\n",
                m.name, l.project.modules[d].name
            ));
        }
    }
    out.push_str("}\n");
    crate::out!("{out}");
    Ok(())
}

/// `{"target", "modules": [...]}` for the closure of one target (or of the
/// named modules; `target` is then the names joined by spaces). Entries are
/// module instances: a module built for two boards with different params
/// appears once per variant.
fn graph_json(g: &Global, l: &super::Loaded, names: &[String]) -> Result<(), Failure> {
    let target = if names.is_empty() {
        "default".to_string()
    } else {
        names.join(" ")
    };
    let inst = g.instances(l, names)?;
    let closure = inst.graph.closure(&inst.selection());
    let modules: Vec<Value> = closure
        .iter()
        .map(|&i| {
            let it = &inst.list[i];
            let m = it.module(&l.project);
            let depends: Vec<&str> = inst.graph.deps[i]
                .iter()
                .map(|&d| inst.list[d].module(&l.project).name.as_str())
                .collect();
            let params: serde_json::Map<String, Value> = it
                .params
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        ParamValue::Value(s) => json!(s),
                        ParamValue::File { rel, .. } => json!({ "file": rel }),
                        ParamValue::Dir { rel, .. } => json!({ "dir": rel }),
                    };
                    (k.clone(), v)
                })
                .collect();
            let mut doc = json!({
                "name": m.name,
                "version": m.version,
                "variant": it.variant_id(),
                "params": params,
                "source": source(m),
                "depends": depends,
                "patches": m.patches.iter().map(|p| p.rel.as_str()).collect::<Vec<_>>(),
                "host": m.host,
                "downloads": m.downloads.iter().map(|d| json!({
                    "urls": d.urls, "file": d.file, "pin": d.pin.label(), "dest": d.dest,
                })).collect::<Vec<_>>(),
                "override": m.overridden.as_ref().map(|o| json!({
                    "kind": o.kind.name(), "dir": o.dir, "digest": o.digest,
                })),
            });
            if m.is_fixed_output() {
                doc["outputs"] = json!(m.outputs);
                doc["network"] = json!(m.network);
            }
            doc
        })
        .collect();
    let doc = json!({ "target": target, "modules": modules });
    // One line, as `cargo metadata` prints it: a consumer reading lines
    // (or `| head -1`) gets the whole document.
    crate::outln!("{doc}");
    Ok(())
}

/// The module's own source (mirrors are the project's, not the module's).
fn source(m: &Module) -> Value {
    match &m.git {
        Some(git) => {
            let mut v = json!({ "git": git.url, "rev": git.rev, "submodules": git.submodules });
            if let Some(sum) = m.pinned_sha256() {
                v["sha256"] = json!(sum);
            }
            v
        }
        None => json!({ "urls": m.urls, "sha256": m.sha256 }),
    }
}
