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
    let mut doc: Value = match serde_norway::from_str(text) {
        Ok(d) => d,
        // Two `<<` keys in one mapping: not YAML 1.1 (duplicate keys), yet
        // CircleCI's parser (SnakeYAML) merges both; so do we.
        Err(e) if e.to_string().contains("duplicate entry with key \"<<\"") => {
            serde_norway::from_str(&number_merge_keys(text)).map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    apply_merges(&mut doc, "")?;
    Ok(doc)
}

/// Block-style merge keys (`<<:` starting a line or a list item) renamed
/// `<<~N` in document order, so a mapping may hold several.
fn number_merge_keys(text: &str) -> String {
    let mut n = 0;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let (item, rest) = match body.strip_prefix("- ") {
            Some(r) => ("- ", r.trim_start()),
            None => ("", body),
        };
        match rest.strip_prefix("<<") {
            Some(after) if after.trim_start().starts_with(':') => {
                n += 1;
                out.push_str(&format!("{indent}{item}<<~{n}{after}"));
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// A merge key's place among a mapping's merges: `<<` first, then `<<~N`
/// by N (document order); None for any other key.
fn merge_order(k: &Value) -> Option<u64> {
    match k.as_str()? {
        "<<" => Some(0),
        s => s.strip_prefix("<<~")?.parse().ok(),
    }
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
            let mut merges: Vec<(u64, Value)> = m
                .keys()
                .filter_map(|k| merge_order(k).map(|o| (o, k.clone())))
                .collect();
            if merges.is_empty() {
                return Ok(());
            }
            merges.sort_by_key(|(o, _)| *o);
            // SnakeYAML (`SafeConstructor.mergeNode`) walks a mapping's keys
            // in order: a merged key is only added when no earlier merge or
            // own key set it, and own keys always win; so with two `<<`,
            // the first one's keys win, as within one `<<: [*a, *b]`.
            let mut sources = Vec::new();
            for (_, k) in merges {
                let merge = m.remove(&k).expect("listed");
                sources.extend(merge_sources(merge, path)?);
            }
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

/// The mappings one merge key's value names.
fn merge_sources(merge: Value, path: &str) -> Result<Vec<serde_norway::Mapping>, String> {
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
    Ok(sources)
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

    #[test]
    fn two_merge_keys_in_one_mapping_merge_both_the_first_winning_own_keys_first() {
        let doc = parse(
            "a: &a {x: a, y: a}\nb: &b {y: b, z: b, w: b}\nj:\n  <<: *a\n  w: own\n  <<: *b\nl:\n  - <<: *b\n    <<: *a\n",
        )
        .unwrap();
        assert_eq!(doc["j"]["x"].as_str(), Some("a"));
        assert_eq!(doc["j"]["y"].as_str(), Some("a"), "the first merge wins");
        assert_eq!(doc["j"]["z"].as_str(), Some("b"));
        assert_eq!(doc["j"]["w"].as_str(), Some("own"), "own keys win");
        assert_eq!(doc["l"][0]["y"].as_str(), Some("b"));
        assert_eq!(doc["l"][0]["x"].as_str(), Some("a"));
        assert!(
            doc["j"]
                .as_mapping()
                .unwrap()
                .keys()
                .all(|k| merge_order(k).is_none())
        );
    }
}
