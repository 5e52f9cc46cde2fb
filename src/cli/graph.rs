//! `strata graph`: the dependency graph in DOT, on stdout.

use super::{Failure, Global};
use crate::graph;

pub fn graph(g: &Global, names: &[String]) -> Result<(), Failure> {
    let l = g.load()?;
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
