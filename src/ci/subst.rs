//! Substitution in a config's values: `<< parameters.x >>` and
//! `<< pipeline.… >>` (a whole-value reference keeps its type: booleans,
//! steps, executors), and `<<# parameters.flag >>…<</ parameters.flag >>` /
//! `<<^ … >>` sections.
//!
//! Only `<< parameters.… >>` and `<< pipeline.… >>` are template syntax:
//! any other `<<` is shell text (`cat <<EOF >> file`, a description) and is
//! left alone, as CircleCI leaves it.

use super::expand::{Cx, scalar};
use super::model::ConfigError;
use serde_norway::{Mapping, Value};

impl Cx<'_> {
    /// The typed value of a whole-value reference `<< parameters.x >>` or
    /// `<< pipeline.parameters.x >>`.
    pub(super) fn whole_ref(&self, s: &str, params: &Mapping) -> Option<Result<Value, String>> {
        let expr = s.trim().strip_prefix("<<")?.strip_suffix(">>")?.trim();
        if !is_expr(expr) {
            return None;
        }
        if let Some(name) = expr.strip_prefix("parameters.") {
            return Some(
                params
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("`<< parameters.{name} >>` is not declared")),
            );
        }
        if let Some(name) = expr.strip_prefix("pipeline.parameters.") {
            return Some(
                self.pipeline_params
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("`<< pipeline.parameters.{name} >>` is not declared")),
            );
        }
        None
    }

    /// Substitutes parameters and pipeline values in every string of `v`.
    pub fn subst(&self, at: &str, v: &Value, params: &Mapping) -> Result<Value, ConfigError> {
        Ok(match v {
            Value::String(s) => {
                // A whole-value reference keeps its type (booleans, steps).
                if let Some(r) = self.whole_ref(s, params) {
                    return r.map_err(|e| self.err(at, e));
                }
                Value::String(self.subst_str(at, s, params)?)
            }
            Value::Sequence(seq) => {
                let mut out = Vec::new();
                for item in seq {
                    // A steps parameter used as a step splices its steps in.
                    match self.subst(at, item, params)? {
                        Value::Sequence(inner) if matches!(item, Value::String(_)) => {
                            out.extend(inner)
                        }
                        other => out.push(other),
                    }
                }
                Value::Sequence(out)
            }
            Value::Mapping(m) => {
                let mut out = Mapping::new();
                for (k, v) in m {
                    out.insert(k.clone(), self.subst(at, v, params)?);
                }
                Value::Mapping(out)
            }
            other => other.clone(),
        })
    }

    /// Sections first (`<<# parameters.f >>…<</ parameters.f >>` kept when
    /// `f` is true, `<<^ … >>` when false), then `<< expr >>` values.
    pub fn subst_str(&self, at: &str, s: &str, params: &Mapping) -> Result<String, ConfigError> {
        let s = self.sections(at, s, params)?;
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find("<<") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(j) = after.find(">>") else {
                out.push_str("<<");
                rest = after;
                continue;
            };
            let expr = after[..j].trim();
            match self.value(expr, params) {
                Some(v) => {
                    out.push_str(&v.map_err(|e| self.err(at, e))?);
                    rest = &after[j + 2..];
                }
                None => {
                    // Shell text (`cat <<EOF >> file`): left as it is.
                    out.push_str("<<");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn sections(&self, at: &str, s: &str, params: &Mapping) -> Result<String, ConfigError> {
        let mut out = String::new();
        let mut rest = s;
        loop {
            let hash = rest.find("<<#");
            let caret = rest.find("<<^");
            let (i, keep_if) = match (hash, caret) {
                (Some(h), Some(c)) if c < h => (c, false),
                (Some(h), _) => (h, true),
                (None, Some(c)) => (c, false),
                (None, None) => break,
            };
            let Some(close) = rest[i..].find(">>") else {
                break;
            };
            let name = rest[i + 3..i + close].trim();
            if !is_expr(name) {
                out.push_str(&rest[..i + 3]);
                rest = &rest[i + 3..];
                continue;
            }
            let body_start = i + close + 2;
            let end = find_section_end(&rest[body_start..], name).ok_or_else(|| {
                self.err(
                    at,
                    format!("`<<# {name} >>` is never closed with `<</ {name} >>`"),
                )
            })?;
            let truth = match self.whole_ref(&format!("<< {name} >>"), params) {
                Some(v) => truthy(&v.map_err(|e| self.err(at, e))?),
                None => match self.value(name, params) {
                    Some(v) => {
                        let t = v.map_err(|e| self.err(at, e))?;
                        !t.is_empty() && t != "false"
                    }
                    None => false,
                },
            };
            out.push_str(&rest[..i]);
            if truth == keep_if {
                out.push_str(&rest[body_start..body_start + end.0]);
            }
            rest = &rest[body_start + end.1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The text of `<< expr >>`, `None` when `expr` is not template syntax.
    pub(super) fn value(&self, expr: &str, params: &Mapping) -> Option<Result<String, String>> {
        if !is_expr(expr) {
            return None;
        }
        if let Some(name) = expr.strip_prefix("parameters.") {
            return Some(
                params
                    .get(name)
                    .map(scalar)
                    .ok_or_else(|| format!("`<< parameters.{name} >>` is not declared")),
            );
        }
        if let Some(name) = expr.strip_prefix("pipeline.parameters.") {
            return Some(
                self.pipeline_params
                    .get(name)
                    .map(scalar)
                    .ok_or_else(|| format!("`<< pipeline.parameters.{name} >>` is not declared")),
            );
        }
        let p = self.pipeline;
        let v = match expr {
            "pipeline.git.branch" => p.branch.clone(),
            "pipeline.git.revision" => p.revision.clone(),
            "pipeline.git.tag" => p.tag.clone(),
            "pipeline.git.base_revision" => String::new(),
            "pipeline.number" => p.number.to_string(),
            "pipeline.id" => p.id.clone(),
            "pipeline.project.git_url" => p.git_url.clone(),
            "pipeline.project.type" => "local".into(),
            "pipeline.trigger_source" => p.trigger_source.clone(),
            "pipeline.in_setup" => "false".into(),
            other if other.starts_with("pipeline.") => {
                return Some(Err(format!("unknown pipeline value `<< {other} >>`")));
            }
            _ => return None,
        };
        Some(Ok(v))
    }
}

/// `parameters.x`, `pipeline.git.tag`, `matrix.os`: template syntax, as
/// opposed to shell text between `<<` and `>>`.
fn is_expr(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && (s.starts_with("parameters.") || s.starts_with("pipeline."))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::String(s) => !s.is_empty() && s != "false",
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(_) => true,
    }
}

/// In `s`, the `(start, end)` of the first `<</ name >>` (spaces optional).
fn find_section_end(s: &str, name: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = s[from..].find("<</") {
        let start = from + i;
        let rest = &s[start + 3..];
        let close = rest.find(">>")?;
        if rest[..close].trim() == name {
            return Some((start, start + 3 + close + 2));
        }
        from = start + 3;
    }
    None
}
