//! `strata build --timings`: a self-contained HTML page of what the build did
//! and when (cargo's `--timings` for module trees).
//!
//! The [`Timeline`] listens to the reporter's events, stamping each with the
//! time it arrived, so the engine needs no extra bookkeeping. A bar is a
//! module's step (fetch … install) from its start event to its end event; a
//! restore runs from the module's start to its `restored` event; `pack` is
//! the time between the last step and the module's `built` event (packing and
//! saving the artifact, then the install stamp). The page draws the bars, the
//! critical path (the chain of modules, each waiting on the dependency that
//! finished last, that ends with the module that finished last), the number
//! of commands running over time and the module graph, all as inline SVG: no
//! script, no network.

use crate::report::event::Event;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// One bar on the page.
#[derive(Debug, Clone)]
pub struct Bar {
    pub module: String,
    /// fetch, unpack, patch, configure, build, install, pack or restore.
    pub phase: String,
    pub start: f64,
    pub end: f64,
    pub failed: bool,
}

/// How a module ended in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Built,
    Restored,
    Fresh,
    Failed,
    Skipped,
    Deferred,
}

#[derive(Default)]
struct State {
    open: HashMap<(String, String), f64>,
    started: HashMap<String, f64>,
    last_step_end: HashMap<String, f64>,
    bars: Vec<Bar>,
    fates: BTreeMap<String, (Fate, f64)>,
}

/// Records the events of one build.
pub struct Timeline {
    t0: Instant,
    state: Mutex<State>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            t0: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    /// Records one event (called by the reporter for every event).
    pub fn record(&self, e: &Event<'_>) {
        let now = self.t0.elapsed().as_secs_f64();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::ModuleStarted { module } => {
                s.started.insert(module.to_string(), now);
            }
            Event::StepStarted { module, step } => {
                s.open
                    .insert((module.to_string(), step.name().to_string()), now);
            }
            Event::StepFinished { module, step, .. } | Event::StepFailed { module, step, .. } => {
                let key = (module.to_string(), step.name().to_string());
                let start = s.open.remove(&key).unwrap_or(now);
                s.bars.push(Bar {
                    module: key.0,
                    phase: key.1,
                    start,
                    end: now,
                    failed: matches!(e, Event::StepFailed { .. }),
                });
                s.last_step_end.insert(module.to_string(), now);
            }
            Event::ModuleBuilt { module, .. } => {
                if let Some(&start) = s.last_step_end.get(*module) {
                    s.bars.push(Bar {
                        module: module.to_string(),
                        phase: "pack".into(),
                        start,
                        end: now,
                        failed: false,
                    });
                }
                s.fates.insert(module.to_string(), (Fate::Built, now));
            }
            Event::ModuleRestored { module, .. } => {
                let start = s.started.get(*module).copied().unwrap_or(now);
                s.bars.push(Bar {
                    module: module.to_string(),
                    phase: "restore".into(),
                    start,
                    end: now,
                    failed: false,
                });
                s.fates.insert(module.to_string(), (Fate::Restored, now));
            }
            Event::ModuleFresh { module } => {
                s.fates.insert(module.to_string(), (Fate::Fresh, now));
            }
            Event::ModuleDeferred { module } => {
                s.fates.insert(module.to_string(), (Fate::Deferred, now));
            }
            Event::ModuleFailed { module, .. } => {
                s.fates.insert(module.to_string(), (Fate::Failed, now));
            }
            Event::ModuleSkipped { module, .. } | Event::ModuleInterrupted { module } => {
                s.fates.insert(module.to_string(), (Fate::Skipped, now));
            }
            _ => {}
        }
    }

    /// The bars recorded so far, in start order.
    pub fn bars(&self) -> Vec<Bar> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut bars = s.bars.clone();
        bars.sort_by(|a, b| a.start.total_cmp(&b.start));
        bars
    }

    /// The page. `deps` maps each module of the build to its dependencies.
    pub fn render(&self, title: &str, deps: &BTreeMap<String, Vec<String>>) -> String {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let total = self.t0.elapsed().as_secs_f64().max(0.001);
        let mut bars = s.bars.clone();
        bars.sort_by(|a, b| a.start.total_cmp(&b.start));
        let path = critical_path(&s.fates, deps);
        let mut html = String::new();
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>strata timings: {}</title>\n<style>\n{}</style>\n</head>\n<body>\n",
            esc(title),
            CSS
        );
        let counts = |f: Fate| s.fates.values().filter(|(x, _)| *x == f).count();
        let _ = write!(
            html,
            "<h1>strata timings: {}</h1>\n<table class=\"summary\">\n<tr><th>total time</th><td>{total:.2}s</td></tr>\n<tr><th>modules</th><td>{}</td></tr>\n<tr><th>built</th><td>{}</td></tr>\n<tr><th>restored from cache (hits)</th><td>{}</td></tr>\n<tr><th>fresh</th><td>{}</td></tr>\n<tr><th>left in cache</th><td>{}</td></tr>\n<tr><th>failed</th><td>{}</td></tr>\n<tr><th>critical path</th><td>{}</td></tr>\n</table>\n",
            esc(title),
            deps.len(),
            counts(Fate::Built),
            counts(Fate::Restored),
            counts(Fate::Fresh),
            counts(Fate::Deferred),
            counts(Fate::Failed),
            esc(&path.join(" → "))
        );
        html.push_str("<h2>Timeline</h2>\n");
        timeline_svg(&mut html, &bars, deps, &path, total);
        html.push_str("<h2>Commands and restores running</h2>\n");
        concurrency_svg(&mut html, &bars, total);
        html.push_str("<h2>Module graph</h2>\n");
        graph_svg(&mut html, deps, &s.fates, &path);
        html.push_str("<h2>Steps</h2>\n<table class=\"steps\">\n<tr><th>module</th><th>step</th><th>start</th><th>seconds</th></tr>\n");
        for b in &bars {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}{}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                esc(&b.module),
                esc(&b.phase),
                if b.failed { " (failed)" } else { "" },
                b.start,
                b.end - b.start
            );
        }
        html.push_str("</table>\n</body>\n</html>\n");
        html
    }
}

/// Modules on the chain that decided the build's length, first to last.
fn critical_path(
    fates: &BTreeMap<String, (Fate, f64)>,
    deps: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let worked = |f: &Fate| matches!(f, Fate::Built | Fate::Restored | Fate::Failed);
    let mut cur = fates
        .iter()
        .filter(|(_, (f, _))| worked(f))
        .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
        .map(|(m, _)| m.clone());
    let mut path = Vec::new();
    while let Some(m) = cur {
        cur = deps.get(&m).and_then(|ds| {
            ds.iter()
                .filter_map(|d| fates.get(d).filter(|(f, _)| worked(f)).map(|x| (d, x.1)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(d, _)| d.clone())
        });
        path.push(m);
        if path.len() > deps.len() {
            break;
        }
    }
    path.reverse();
    path
}

fn color(phase: &str) -> &'static str {
    match phase {
        "fetch" => "#6baed6",
        "unpack" => "#9ecae1",
        "patch" => "#c6dbef",
        "configure" => "#fdae6b",
        "build" => "#fd8d3c",
        "install" => "#e6550d",
        "pack" => "#a1d99b",
        "restore" => "#31a354",
        _ => "#bdbdbd",
    }
}

fn timeline_svg(
    html: &mut String,
    bars: &[Bar],
    deps: &BTreeMap<String, Vec<String>>,
    path: &[String],
    total: f64,
) {
    let mut rows: Vec<&String> = Vec::new();
    for b in bars {
        if !rows.contains(&&b.module) {
            rows.push(&b.module);
        }
    }
    for m in deps.keys() {
        if !rows.contains(&m) {
            rows.push(m);
        }
    }
    // The right padding leaves room for the last axis label, centred on its tick.
    let (label_w, width, row_h, right_pad) = (180.0, 900.0, 22.0, 40.0);
    let height = rows.len() as f64 * row_h + 30.0;
    let x = |t: f64| label_w + t / total * (width - label_w - right_pad);
    let _ = writeln!(
        html,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    );
    for (r, m) in rows.iter().enumerate() {
        let y = r as f64 * row_h + 4.0;
        let class = if path.contains(m) { "crit" } else { "mod" };
        let _ = writeln!(
            html,
            "<text class=\"{class}\" x=\"4\" y=\"{:.1}\">{}</text>",
            y + 14.0,
            esc(m)
        );
        for b in bars.iter().filter(|b| &&b.module == m) {
            let w = (x(b.end) - x(b.start)).max(1.5);
            let _ = writeln!(
                html,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"{}><title>{} {}: {:.2}s</title></rect>",
                x(b.start),
                row_h - 6.0,
                color(&b.phase),
                if b.failed {
                    " stroke=\"#de2d26\" stroke-width=\"2\""
                } else {
                    ""
                },
                esc(m),
                esc(&b.phase),
                b.end - b.start
            );
        }
    }
    let axis_y = rows.len() as f64 * row_h + 18.0;
    for (t, label) in ticks(total) {
        let _ = writeln!(
            html,
            "<text class=\"axis\" text-anchor=\"middle\" x=\"{:.1}\" y=\"{axis_y:.1}\">{label}</text>",
            x(t)
        );
    }
    html.push_str("</svg>\n<p class=\"legend\">");
    for p in [
        "fetch",
        "unpack",
        "patch",
        "configure",
        "build",
        "install",
        "pack",
        "restore",
    ] {
        let _ = write!(html, "<span style=\"background:{}\">{p}</span> ", color(p));
    }
    html.push_str("<b>bold</b> names: the critical path</p>\n");
}

/// Axis ticks for a run of `total` seconds: 0 and every multiple of a
/// round step (1, 2 or 5 times a power of ten) up to `total`, at most six
/// intervals, each with its label (`0.2s`, `0.4s`…; never quarters).
fn ticks(total: f64) -> Vec<(f64, String)> {
    let total = total.max(0.001);
    let rough = total / 6.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    // Decimals enough to tell the ticks apart, no more.
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let n = (total / step + 1e-9).floor() as usize;
    (0..=n)
        .map(|i| {
            let t = i as f64 * step;
            (t, format!("{t:.decimals$}s"))
        })
        .collect()
}

fn concurrency_svg(html: &mut String, bars: &[Bar], total: f64) {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for b in bars.iter().filter(|b| b.phase != "pack") {
        edges.push((b.start, 1));
        edges.push((b.end, -1));
    }
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut level = 0;
    let mut peak = 1;
    let mut points = vec![(0.0, 0)];
    for (t, d) in edges {
        points.push((t, level));
        level += d;
        peak = peak.max(level);
        points.push((t, level));
    }
    points.push((total, level));
    let (width, height) = (900.0, 120.0);
    let x = |t: f64| 40.0 + t / total * (width - 50.0);
    let y = |n: i32| height - 20.0 - n as f64 / peak as f64 * (height - 30.0);
    let pts: Vec<String> = points
        .iter()
        .map(|(t, n)| format!("{:.1},{:.1}", x(*t), y(*n)))
        .collect();
    let _ = writeln!(
        html,
        "<svg class=\"concurrency\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n<polyline fill=\"none\" stroke=\"#3182bd\" stroke-width=\"2\" points=\"{}\"/>\n<text class=\"axis\" x=\"2\" y=\"{:.1}\">{peak}</text>\n<text class=\"axis\" x=\"2\" y=\"{:.1}\">0</text>\n</svg>\n<p>peak: {peak} at once</p>",
        pts.join(" "),
        y(peak) + 4.0,
        y(0)
    );
}

fn graph_svg(
    html: &mut String,
    deps: &BTreeMap<String, Vec<String>>,
    fates: &BTreeMap<String, (Fate, f64)>,
    path: &[String],
) {
    // Layer = longest chain of dependencies below a module.
    let mut layer: HashMap<&str, usize> = HashMap::new();
    fn depth<'a>(
        m: &'a str,
        deps: &'a BTreeMap<String, Vec<String>>,
        layer: &mut HashMap<&'a str, usize>,
        guard: usize,
    ) -> usize {
        if let Some(&d) = layer.get(m) {
            return d;
        }
        let d = if guard > deps.len() {
            0
        } else {
            deps.get(m)
                .map(|ds| {
                    ds.iter()
                        .map(|x| depth(x, deps, layer, guard + 1) + 1)
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0)
        };
        layer.insert(m, d);
        d
    }
    for m in deps.keys() {
        depth(m, deps, &mut layer, 0);
    }
    let mut columns: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for m in deps.keys() {
        columns.entry(layer[m.as_str()]).or_default().push(m);
    }
    let (col_w, row_h) = (GRAPH_COL, GRAPH_ROW);
    let rows = columns.values().map(Vec::len).max().unwrap_or(1);
    let width = columns.len() as f64 * col_w + 20.0;
    let height = rows as f64 * row_h + 20.0;
    let mut pos: HashMap<&str, (f64, f64)> = HashMap::new();
    for (c, ms) in &columns {
        for (r, m) in ms.iter().enumerate() {
            pos.insert(m, (10.0 + *c as f64 * col_w, 10.0 + r as f64 * row_h));
        }
    }
    let _ = writeln!(
        html,
        "<svg class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    );
    for (m, ds) in deps {
        for d in ds {
            if let (Some(a), Some(b)) = (pos.get(m.as_str()), pos.get(d.as_str())) {
                let points: Vec<String> = edge(*a, *b)
                    .iter()
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                let _ = writeln!(
                    html,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"#999\"/>",
                    points.join(" ")
                );
            }
        }
    }
    for (m, (x, y)) in &pos {
        let fill = match fates.get(*m).map(|f| &f.0) {
            Some(Fate::Built) => "#fdd0a2",
            Some(Fate::Restored) => "#c7e9c0",
            Some(Fate::Failed) => "#fcbba1",
            _ => "#f0f0f0",
        };
        let stroke = if path.iter().any(|p| p == m) {
            "#000\" stroke-width=\"2"
        } else {
            "#999"
        };
        let _ = writeln!(
            html,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{}\" height=\"{}\" rx=\"4\" fill=\"{fill}\" stroke=\"{stroke}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            GRAPH_BOX.0,
            GRAPH_BOX.1,
            x + 6.0,
            y + 17.0,
            esc(m)
        );
    }
    html.push_str("</svg>\n");
}

/// Box size and grid of the module graph: columns `GRAPH_COL` apart, rows
/// `GRAPH_ROW` apart, boxes `GRAPH_BOX` (width, height) at the top left of
/// their cell; the rest of each cell is a gutter no box is drawn in.
const GRAPH_COL: f64 = 190.0;
const GRAPH_ROW: f64 = 40.0;
const GRAPH_BOX: (f64, f64) = (150.0, 26.0);

/// The line from the box at `a` (a dependent, left edge) to the box at `b`
/// (its dependency, right edge), never through another box: between
/// neighbouring columns it is straight (it crosses only the gutter); across
/// more columns it leaves `a` into the gutter on its left, runs along the
/// gap below `b`'s row (no box is drawn in a gap between rows) and enters
/// the gutter on `b`'s right.
fn edge(a: (f64, f64), b: (f64, f64)) -> Vec<(f64, f64)> {
    let (w, h) = GRAPH_BOX;
    let start = (a.0, a.1 + h / 2.0);
    let end = (b.0 + w, b.1 + h / 2.0);
    if a.0 - b.0 <= GRAPH_COL + 0.5 {
        return vec![start, end];
    }
    let gutter = (GRAPH_COL - w) / 2.0;
    let gap = b.1 + (h + GRAPH_ROW) / 2.0;
    vec![
        start,
        (a.0 - gutter, start.1),
        (a.0 - gutter, gap),
        (end.0 + gutter, gap),
        (end.0 + gutter, end.1),
        end,
    ]
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
svg text { font-size: 12px; font-family: sans-serif; }
text.crit { font-weight: bold; }
text.axis { fill: #666; }
.legend span { padding: 0 6px; margin-right: 4px; }
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Step;

    #[test]
    fn axis_ticks_are_round_1_2_5_steps_up_to_the_total() {
        let labels =
            |total: f64| -> Vec<String> { ticks(total).into_iter().map(|t| t.1).collect() };
        // 1.07 s once gave 0.3/0.5/0.8 (quarters); the last label was clipped.
        assert_eq!(
            labels(1.07),
            ["0.0s", "0.2s", "0.4s", "0.6s", "0.8s", "1.0s"]
        );
        assert_eq!(labels(10.0), ["0s", "2s", "4s", "6s", "8s", "10s"]);
        assert_eq!(labels(37.0), ["0s", "10s", "20s", "30s"]);
        assert_eq!(
            labels(0.05),
            ["0.00s", "0.01s", "0.02s", "0.03s", "0.04s", "0.05s"]
        );
        assert_eq!(labels(250.0), ["0s", "50s", "100s", "150s", "200s", "250s"]);
    }

    #[test]
    fn the_last_axis_label_fits_in_the_timeline() {
        let t = Timeline::new();
        let deps: BTreeMap<String, Vec<String>> = [("m".to_string(), vec![])].into();
        let html = t.render("t", &deps);
        let svg = &html[html.find("<svg class=\"timeline\"").unwrap()..];
        let svg = &svg[..svg.find("</svg>").unwrap()];
        let needle = "class=\"axis\" text-anchor=\"middle\" x=\"";
        let last = svg.rfind(needle).unwrap() + needle.len();
        let x: f64 = svg[last..].split('"').next().unwrap().parse().unwrap();
        // Labels are centred on their tick; `0.0010s`, 7 characters of 12 px
        // sans-serif, is about 45 px wide: half of it must fit.
        assert!(x + 45.0 / 2.0 <= 900.0, "last label at {x}");
    }

    /// `rootfs → banner` was drawn straight through the `hello` box: no edge
    /// may cross a box other than its two ends'.
    #[test]
    fn graph_edges_go_around_boxes() {
        let deps: BTreeMap<String, Vec<String>> = [
            ("libgreet", vec![]),
            ("hello", vec!["libgreet"]),
            ("banner", vec![]),
            ("rootfs", vec!["hello", "banner", "libgreet"]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        let mut html = String::new();
        graph_svg(&mut html, &deps, &BTreeMap::new(), &[]);
        let attr = |tag: &str, name: &str| -> f64 {
            let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            tag[at..].split('"').next().unwrap().parse().unwrap()
        };
        let boxes: Vec<(f64, f64, f64, f64)> = html
            .split("<rect")
            .skip(1)
            .map(|r| {
                let (x, y) = (attr(r, "x"), attr(r, "y"));
                (x, y, x + attr(r, "width"), y + attr(r, "height"))
            })
            .collect();
        assert_eq!(boxes.len(), 4);
        let edges: Vec<Vec<(f64, f64)>> = html
            .split("<polyline points=\"")
            .skip(1)
            .map(|p| {
                p.split('"')
                    .next()
                    .unwrap()
                    .split(' ')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect();
        assert_eq!(edges.len(), 4);
        // Sample each segment; a point strictly inside a box is a crossing.
        for e in &edges {
            for seg in e.windows(2) {
                for k in 1..100 {
                    let f = k as f64 / 100.0;
                    let (x, y) = (
                        seg[0].0 + (seg[1].0 - seg[0].0) * f,
                        seg[0].1 + (seg[1].1 - seg[0].1) * f,
                    );
                    for b in &boxes {
                        let inside =
                            x > b.0 + 0.5 && x < b.2 - 0.5 && y > b.1 + 0.5 && y < b.3 - 0.5;
                        assert!(!inside, "edge {e:?} crosses box {b:?} at ({x}, {y})");
                    }
                }
            }
        }
    }

    #[test]
    fn the_critical_path_follows_the_dependency_that_finished_last() {
        let t = Timeline::new();
        let deps: BTreeMap<String, Vec<String>> = [
            ("app", vec!["fast", "slow"]),
            ("fast", vec![]),
            ("slow", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        for m in ["fast", "slow", "app"] {
            t.record(&Event::ModuleStarted { module: m });
            t.record(&Event::StepStarted {
                module: m,
                step: Step::Build,
            });
            if m == "slow" {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            t.record(&Event::StepFinished {
                module: m,
                step: Step::Build,
                secs: 0.0,
            });
            t.record(&Event::ModuleBuilt {
                module: m,
                secs: 0.0,
            });
        }
        let s = t.state.lock().unwrap();
        assert_eq!(critical_path(&s.fates, &deps), vec!["slow", "app"]);
        drop(s);
        let page = t.render("demo", &deps);
        assert!(page.contains("slow → app"), "{page}");
        assert_eq!(t.bars().len(), 6, "a build and a pack bar per module");
    }
}
