//! Every subcommand with every flag it documents: clap's own consistency
//! checks, then each flag run through the binary, so no flag can collide with
//! another (the `ci run --job` / global `--jobs` panic) again.

mod common;

use common::*;

#[test]
fn clap_definition_is_consistent() {
    strata::cli::command().debug_assert();
}

/// A value clap accepts for `arg`.
fn sample(arg: &clap::Arg) -> String {
    if let Some(v) = arg.get_possible_values().first() {
        return v.get_name().to_string();
    }
    let name = arg
        .get_value_names()
        .and_then(|n| n.first())
        .map(|n| n.to_string())
        .unwrap_or_default();
    match (arg.get_id().as_str(), name.as_str()) {
        ("env" | "param", _) => "X=1".into(),
        (_, "N") => "1".into(),
        ("jobs" | "parallel", _) => "1".into(),
        _ => "x".into(),
    }
}

/// Every path of subcommands down to a leaf, with the leaf's command.
fn leaves(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    let subs: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .collect();
    if subs.is_empty() {
        out.push((path.clone(), cmd.clone()));
    }
    for s in subs {
        let mut p = path.clone();
        p.push(s.get_name().to_string());
        leaves(s, p, out);
    }
}

#[test]
fn every_subcommand_accepts_every_flag_it_documents() {
    let mut root = strata::cli::command();
    root.build();
    let mut all = Vec::new();
    leaves(&root, Vec::new(), &mut all);
    assert!(all.len() > 15, "walked only {} subcommands", all.len());
    let p = TestProject::new("");
    let mut runs = 0;
    for (path, cmd) in &all {
        // Required positionals get a sample value; then each flag alone.
        let positionals: Vec<String> = cmd
            .get_positionals()
            .filter(|a| a.is_required_set())
            .map(sample)
            .collect();
        let required: Vec<Vec<String>> = cmd
            .get_opts()
            .filter(|a| a.is_required_set())
            .map(|a| vec![format!("--{}", a.get_long().unwrap()), sample(a)])
            .collect();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            let mut argv: Vec<String> = path.clone();
            argv.push(format!("--{long}"));
            if arg.get_action().takes_values() {
                argv.push(sample(arg));
            }
            for r in &required {
                if r[0] != format!("--{long}") {
                    argv.extend(r.iter().cloned());
                }
            }
            argv.extend(positionals.iter().cloned());
            // Never the network, never stdin, never a long run.
            // In the temp project: commands that write beside the caller
            // (`cache keygen`) must not write into the source tree.
            let out = p
                .strata()
                .current_dir(p.root())
                .args(&argv)
                .env("STRATA_CI_STORE", p.path(".ci-store"))
                .timeout(std::time::Duration::from_secs(60))
                .output()
                .unwrap();
            runs += 1;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("panicked") && out.status.code().is_some_and(|c| c != 101),
                "strata {} panicked:\n{stderr}",
                argv.join(" ")
            );
            assert_ne!(
                out.status.code(),
                Some(2).filter(|_| stderr.contains("unexpected argument")),
                "strata {}: a documented flag is refused:\n{stderr}",
                argv.join(" ")
            );
        }
    }
    assert!(runs > 60, "ran only {runs} flag invocations");
}

/// The README's command list names every command the binary has, and the
/// README links every page of docs/.
#[test]
fn the_readme_documents_every_command_and_links_every_doc() {
    let root_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root_dir.join("README.md")).unwrap();
    let mut root = strata::cli::command();
    root.build();
    let mut all = Vec::new();
    leaves(&root, Vec::new(), &mut all);
    for (path, _) in &all {
        let (parent, name) = match path.as_slice() {
            [one] => (None, one.as_str()),
            [p, n] => (Some(p.as_str()), n.as_str()),
            _ => continue,
        };
        let named = readme.lines().any(|l| {
            let Some(rest) = l.strip_prefix("strata ") else {
                return false;
            };
            let words: Vec<&str> = rest
                .split(|c: char| c.is_whitespace() || c == '|')
                .filter(|w| !w.is_empty())
                .collect();
            match parent {
                None => words.first() == Some(&name),
                Some(p) => words.first() == Some(&p) && words.contains(&name),
            }
        });
        assert!(
            named,
            "README's command list lacks `strata {}`",
            path.join(" ")
        );
    }
    for doc in std::fs::read_dir(root_dir.join("docs")).unwrap() {
        let name = doc.unwrap().file_name().into_string().unwrap();
        assert!(
            readme.contains(&format!("(docs/{name})")),
            "README does not link docs/{name}"
        );
    }
}
