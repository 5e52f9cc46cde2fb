//! Generated CI configs are valid against the published workflow schemas
//! (GitHub Actions and CircleCI, as vendored by `check-jsonschema`, which
//! `scripts/test.sh` installs; no network is used).

mod common;
use common::TestProject;

fn validator() -> Option<std::path::PathBuf> {
    let found = std::process::Command::new("check-jsonschema")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("check-jsonschema".into());
    }
    // Under CI the validator must be there: a skipped check proves nothing.
    assert!(
        std::env::var_os("CI").is_none(),
        "check-jsonschema is not on PATH; run ./scripts/test.sh, which installs it"
    );
    eprintln!("check-jsonschema not found: skipping (./scripts/test.sh installs it)");
    None
}

fn validate(bin: &std::path::Path, schema: &str, file: &std::path::Path) {
    let out = std::process::Command::new(bin)
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not a valid {schema} document:\n{}{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

#[test]
fn generated_circleci_and_github_configs_match_their_schemas() {
    let Some(bin) = validator() else { return };
    for remote in [None, Some("s3://team-bucket/strata")] {
        let p = TestProject::new(&format!(
            "[project]\nname = \"t\"\n{}\n[target.default]\nmodules = [\"app\"]\n[target.board]\nmodules = [\"app\"]\n[layer.toolchain]\nmodules = [\"lib\"]\n",
            remote.map_or(String::new(), |r| format!("[cache]\nremote = \"{r}\"\n"))
        ));
        p.local_module("lib", &[("f", "x")], "host = true");
        p.local_module("app", &[("f", "y")], "depends = [\"lib\"]");
        for (kind, schema, file) in [
            ("circleci", "vendor.circle-ci", ".circleci/config.yml"),
            (
                "github",
                "vendor.github-workflows",
                ".github/workflows/strata.yml",
            ),
        ] {
            p.strata()
                .args(["ci", "generate", kind, "-o", file])
                .assert()
                .success();
            validate(&bin, schema, &p.path(file));
        }
    }
}
