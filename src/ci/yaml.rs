//! Reading a CircleCI config's YAML: `serde_norway` (the maintained fork of
//! the deprecated serde_yaml 0.9) parses it, aliases are expanded by the
//! parser (an anchor redefined later applies to the aliases after it), and
//! then YAML merge keys are applied everywhere, as CircleCI's parser does:
//! `<<: *a` and `<<: [*a, *b]`, the mapping's own keys winning over merged
//! ones and earlier merges over later ones.
//!
//! serde_norway's own `apply_merge` is not used: it merges a source that
//! still holds its own `<<` without resolving it, so a merge of a merge
//! (`a: &a {<<: *base}` then `<<: *a`) silently drops `base`'s keys. Here
//! every merge source is resolved before it is merged.

use serde_norway::Value;

/// Parses `text` and applies every merge key. Errors are one line, with
/// the position the parser gives.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut doc: Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    apply_merges(&mut doc, "")?;
    Ok(doc)
}

fn merge_key() -> Value {
    Value::String("<<".into())
}

/// Applies merge keys in `v` (at `path`, for errors), innermost first.
pub fn apply_merges(v: &mut Value, path: &str) -> Result<(), String> {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                apply_merges(val, &child)?;
            }
            let Some(merge) = m.remove(merge_key()) else {
                return Ok(());
            };
            let sources = match merge {
                Value::Mapping(src) => vec![src],
                Value::Sequence(seq) => seq
                    .into_iter()
                    .map(|s| match s {
                        Value::Mapping(src) => Ok(src),
                        other => Err(format!(
                            "{}: a merge key `<<` lists {}, not a mapping\n  hint: merge only anchors of mappings: `<<: [*a, *b]`",
                            if path.is_empty() { "top level" } else { path },
                            kind(&other)
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                other => {
                    return Err(format!(
                        "{}: a merge key `<<` holds {}, not a mapping\n  hint: write `<<: *anchor` with an anchor of a mapping",
                        if path.is_empty() { "top level" } else { path },
                        kind(&other)
                    ));
                }
            };
            for src in sources {
                for (k, val) in src {
                    if !m.contains_key(&k) {
                        m.insert(k, val);
                    }
                }
            }
            Ok(())
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                apply_merges(item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Value::Tagged(t) => apply_merges(&mut t.value, path),
        _ => Ok(()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
        path.iter().fold(v, |v, k| &v[*k])
    }

    #[test]
    fn merges_single_lists_nested_and_own_keys_win() {
        let doc = parse(
            r#"
base: &base
  image: debian:12
  working_directory: /w
  environment: {A: "1"}
mid: &mid
  <<: *base
  working_directory: /mid
extra: &extra
  shell: bash
  image: ignored-later-source
job1:
  <<: *base
  image: own
job2:
  <<: [*mid, *extra]
job3:
  <<: *mid
shell: "cat <<EOF > f\nx\nEOF\n"
"#,
        )
        .unwrap();
        assert_eq!(get(&doc, &["job1", "image"]).as_str(), Some("own"));
        assert_eq!(
            get(&doc, &["job1", "working_directory"]).as_str(),
            Some("/w")
        );
        assert_eq!(get(&doc, &["job1", "environment", "A"]).as_str(), Some("1"));
        // Earlier merges win; a merge of a merge keeps the inner keys.
        assert_eq!(get(&doc, &["job2", "image"]).as_str(), Some("debian:12"));
        assert_eq!(
            get(&doc, &["job2", "working_directory"]).as_str(),
            Some("/mid")
        );
        assert_eq!(get(&doc, &["job2", "shell"]).as_str(), Some("bash"));
        assert_eq!(get(&doc, &["job3", "image"]).as_str(), Some("debian:12"));
        assert!(doc["job2"].get("<<").is_none());
        // `<<` inside text is text.
        assert!(doc["shell"].as_str().unwrap().starts_with("cat <<EOF"));
    }

    #[test]
    fn an_anchor_redefined_later_applies_to_later_aliases() {
        let doc = parse("a: &x {v: 1}\nb: {<<: *x}\nc: &x {v: 2}\nd: {<<: *x}\ne: *x\n").unwrap();
        assert_eq!(doc["b"]["v"].as_i64(), Some(1));
        assert_eq!(doc["d"]["v"].as_i64(), Some(2));
        assert_eq!(doc["e"]["v"].as_i64(), Some(2));
    }

    #[test]
    fn merging_a_scalar_is_an_error_naming_the_place() {
        let e = parse("s: &s text\njobs:\n  j:\n    <<: *s\n").unwrap_err();
        assert!(e.contains("jobs.j") && e.contains("a string"), "{e}");
        let e = parse("s: &s text\nj:\n  <<: [*s]\n").unwrap_err();
        assert!(e.contains("j: a merge key"), "{e}");
    }
}
