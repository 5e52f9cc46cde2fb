//! `strata log MODULE [STEP] [--target T]`: print a module's step logs.
//!
//! Logs live in strata's state (`build/.strata/modules/<instance>/logs/`),
//! one per command step, kept after success and failure alike. The module
//! is resolved to its instance as `why` does: through `--target` (default:
//! `default`), so a board's variant shows its own logs.

use super::{Failure, Global};
use crate::fingerprint::Step;

pub fn log(
    g: &Global,
    module: &str,
    step: Option<&str>,
    target: Option<&str>,
) -> Result<(), Failure> {
    let steps: Vec<Step> = match step {
        None => vec![Step::Configure, Step::Build, Step::Install],
        Some(s) => match [Step::Configure, Step::Build, Step::Install]
            .into_iter()
            .find(|x| x.name() == s)
        {
            Some(x) => vec![x],
            None => {
                return Err(Failure::usage(format!(
                    "`{s}` is not a step with a log\n  hint: the steps that run commands are configure, build and install"
                )));
            }
        },
    };
    let l = g.load()?;
    let (inst, i) = super::plan::module_instance(g, &l, module, target)?;
    // A step the module file gives no command never runs, so it never has
    // a log: say so rather than "not run yet".
    let m = inst.list[i].module(&l.project);
    let has = |s: &Step| match s {
        Step::Configure => m.configure.is_some(),
        Step::Build => m.build.is_some(),
        _ => m.install.is_some(),
    };
    if let [s] = steps[..]
        && !has(&s)
    {
        return Err(Failure::usage(format!(
            "module {} has no {} step: {} sets no `{}` command, so it has no log\n  hint: the steps it runs: {}",
            inst.list[i].label,
            s.name(),
            m.manifest_path.display(),
            s.name(),
            with_commands(&[Step::Configure, Step::Build, Step::Install], &has)
        )));
    }
    if steps.len() > 1 && !steps.iter().any(has) {
        return Err(Failure::usage(format!(
            "module {} runs no commands ({} sets no `configure`, `build` or `install`), so it has no logs",
            inst.list[i].label,
            m.manifest_path.display()
        )));
    }
    let dir = inst.list[i].logs(&l.project);
    let mut shown = 0;
    for s in &steps {
        let path = dir.join(format!("{}.log", s.name()));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if g.json {
            crate::report::emit_json(
                "log",
                serde_json::json!({
                    "module": inst.list[i].label, "step": s, "path": path,
                    "text": String::from_utf8_lossy(&bytes),
                }),
            );
            shown += 1;
            continue;
        }
        if steps.len() > 1 {
            crate::errln!("==> {} <==", path.display());
        }
        crate::out!("{}", String::from_utf8_lossy(&bytes));
        shown += 1;
    }
    if shown == 0 {
        return Err(Failure::Other(anyhow::anyhow!(
            "no {} log for {} in {}\n  hint: the module has not run that step here yet (a module restored from the cache has no logs); `strata build {module}` runs it",
            step.unwrap_or("command"),
            inst.list[i].label,
            dir.display()
        )));
    }
    Ok(())
}

/// `configure, build` or `none` : the steps of `steps` that have a command.
fn with_commands(steps: &[Step], has: &dyn Fn(&Step) -> bool) -> String {
    let names: Vec<&str> = steps.iter().filter(|s| has(s)).map(|s| s.name()).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}
