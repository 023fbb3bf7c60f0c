//! The harness's modules form floors, and imports only go down: each module
//! names, through its `use` and `crate::`/`super::` paths, only modules on
//! its own floor or below, and no module reaches one that reaches it back.
//! Read from the source, so an upward import or a circle fails here, with
//! the file and the name, before anyone has to untangle it.
//! docs/architecture.md draws the same floors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module's file and its source minus comments and unit tests.
#[derive(Debug, Clone)]
struct Module {
    file: String,
    code: String,
}

/// Every module of `src`, by path (`bench::context`).
fn modules(src: &Path) -> BTreeMap<String, Module> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            // The crate root and the binaries stand above every floor.
            if parts == ["lib"] || parts == ["main"] || parts.first().is_some_and(|p| p == "bin") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let file = Path::new("harness/src").join(path.strip_prefix(src).unwrap());
            out.insert(
                parts.join("::"),
                Module {
                    file: file.display().to_string(),
                    code,
                },
            );
        }
    }
    out
}

/// The paths a module names: `crate::a::b`, `super::c`, and each item of
/// `crate::a::{b, c::d}`, as written.
fn paths(code: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| -> usize {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        for (at, _) in code.match_indices(start) {
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let mut rest = &code[at..];
            let mut path = Vec::new();
            loop {
                let n = ident(rest);
                if n == 0 {
                    break;
                }
                path.push(rest[..n].to_owned());
                rest = &rest[n..];
                match rest.strip_prefix("::") {
                    Some(r) => rest = r,
                    None => break,
                }
            }
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    let item = item.trim();
                    let n = ident(item);
                    if n > 0 {
                        let mut p = path.clone();
                        p.push(item[..n].to_owned());
                        out.push(p);
                    }
                }
            }
            out.push(path);
        }
    }
    out
}

/// The module a path names, from inside `from`.
fn resolve(path: &[String], from: &str, known: &BTreeSet<String>) -> Option<String> {
    let mut full: Vec<String> = Vec::new();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => rest = &path[1..],
        Some("super") => {
            full = from.split("::").map(String::from).collect();
            while rest.first().is_some_and(|p| p == "super") {
                full.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    full.extend(rest.iter().cloned());
    (1..=full.len())
        .rev()
        .map(|i| full[..i].join("::"))
        .find(|m| known.contains(m))
}

/// The floors, bottom up. A module stands on the floor of the longest
/// prefix listed for it; every module must have one.
const FLOORS: &[(&str, u8)] = &[
    // Statistics, /proc, pinning, the scheduling floor, units.
    ("measure", 0),
    // The language of findings and reports (the message catalogue).
    ("lang", 0),
    // results.json of every command.
    ("schema", 1),
    // A server or client under test, and our side of the wire.
    ("dialect", 2),
    ("error", 2),
    ("target", 2),
    ("serve", 2),
    ("peer", 2),
    // Engines: open loop, sequenced UDP, the fault proxy.
    ("load", 3),
    ("udp", 3),
    ("proxy", 3),
    // Scenarios.
    ("bench", 4),
    ("conform", 4),
    ("explore", 4),
    ("soak", 4),
    ("learn", 4),
    // Judging: verdicts, the gate's comparisons, pooling.
    ("analysis", 5),
    // Renderers: they draw what analysis judged.
    ("report", 6),
    // Commands: each `run(Args)`, writing reports.
    ("bench::command", 7),
    ("conform::command", 7),
    ("explore::command", 7),
    ("soak::command", 7),
    ("load::command", 7),
    ("proxy::command", 7),
    ("learn::command", 7),
    ("report::command", 7),
    ("gate", 7),
    // Only main names the CLI.
    ("cli", 8),
];

/// Rooms that may name nothing but these (and themselves), whatever their
/// floor: measurement stands alone, the schema is data, analysis judges
/// results, renderers draw them and reach no scenario, engine, target or
/// gate.
const ONLY: &[(&str, &[&str])] = &[
    ("measure", &[]),
    ("schema", &["measure"]),
    ("analysis", &["measure", "lang", "schema"]),
    ("report", &["measure", "lang", "schema", "analysis"]),
    (
        "report::command",
        &["measure", "lang", "schema", "analysis", "report"],
    ),
];

/// The longest listed prefix of `module` in `table`.
fn room<'a, T>(module: &str, table: &'a [(&'a str, T)]) -> Option<&'a (&'a str, T)> {
    table
        .iter()
        .filter(|(p, _)| module == *p || module.starts_with(&format!("{p}::")))
        .max_by_key(|(p, _)| p.len())
}

/// Every module's imports of other modules: target -> the first path
/// written for it.
fn edges(mods: &BTreeMap<String, Module>) -> BTreeMap<String, BTreeMap<String, String>> {
    let known: BTreeSet<String> = mods.keys().cloned().collect();
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (m, module) in mods {
        let to = out.entry(m.clone()).or_default();
        for p in paths(&module.code) {
            if let Some(t) = resolve(&p, m, &known) {
                // A module may use its own children; that is not a layer.
                if t != *m && !t.starts_with(&format!("{m}::")) && !m.starts_with(&format!("{t}::"))
                {
                    to.entry(t).or_insert_with(|| p.join("::"));
                }
            }
        }
    }
    out
}

/// Every import that goes up a floor or out of an `ONLY` room, and every
/// module without a floor, one line each: file, name, floors.
fn violations(mods: &BTreeMap<String, Module>) -> Vec<String> {
    let mut out = Vec::new();
    for (m, to) in edges(mods) {
        let file = &mods[&m].file;
        let Some(&(_, floor)) = room(&m, FLOORS) else {
            out.push(format!(
                "{file}: module {m} has no floor in tests/layers.rs FLOORS"
            ));
            continue;
        };
        for (t, written) in to {
            let Some(&(_, up)) = room(&t, FLOORS) else {
                continue;
            };
            if up > floor {
                out.push(format!(
                    "{file}: {m} (floor {floor}) names {written}, on floor {up} above it"
                ));
            }
            if let Some((own, allowed)) = room(&m, ONLY) {
                let own_room = t == *own || t.starts_with(&format!("{own}::"));
                let ok = allowed
                    .iter()
                    .any(|a| t == *a || t.starts_with(&format!("{a}::")));
                if !own_room && !ok {
                    out.push(format!(
                        "{file}: {m} names {written}; {own} may name only {allowed:?}"
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn imports_only_go_down_the_floors() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    assert!(
        mods.len() > 50,
        "the walk found the modules: {:?}",
        mods.keys()
    );
    let v = violations(&mods);
    assert!(v.is_empty(), "imports that go up:\n{}", v.join("\n"));
}

#[test]
fn an_upward_import_fails_with_its_file_and_name() {
    let module = |file: &str, code: &str| Module {
        file: file.to_owned(),
        code: code.to_owned(),
    };
    let mut mods = BTreeMap::new();
    mods.insert(
        "measure::stats".to_owned(),
        module("harness/src/measure/stats.rs", ""),
    );
    mods.insert(
        "bench::echo".to_owned(),
        module("harness/src/bench/echo.rs", ""),
    );
    mods.insert(
        "report::md".to_owned(),
        module("harness/src/report/md.rs", ""),
    );
    mods.insert(
        "schema::bench".to_owned(),
        module(
            "harness/src/schema/bench.rs",
            "use crate::measure::stats::Summary;\nuse crate::bench::echo::Row;",
        ),
    );
    let v = violations(&mods);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v[0].contains("harness/src/schema/bench.rs") && v[0].contains("crate::bench::echo::Row"),
        "{v:?}"
    );
    assert!(v[0].contains("floor 4 above"), "{v:?}");
    // The ONLY rule: schema names nothing but measure.
    assert!(v[1].contains("schema may name only"), "{v:?}");
    // A renderer reaching down to a scenario is caught by ONLY, though
    // the floors alone would let it.
    mods.insert(
        "schema::bench".to_owned(),
        module(
            "harness/src/schema/bench.rs",
            "use crate::measure::stats::Summary;",
        ),
    );
    mods.insert(
        "report::md".to_owned(),
        module(
            "harness/src/report/md.rs",
            "let r = crate::bench::echo::run();",
        ),
    );
    let v = violations(&mods);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("harness/src/report/md.rs") && v[0].contains("report may name only"));
    // A new module without a floor is named too.
    mods.insert("newroom".to_owned(), module("harness/src/newroom.rs", ""));
    assert!(
        violations(&mods)
            .iter()
            .any(|l| l.contains("newroom has no floor"))
    );
}

#[test]
fn the_harness_has_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let all = edges(&modules(&src));
    let edges: BTreeMap<&str, BTreeSet<String>> = all
        .iter()
        .map(|(m, to)| (m.as_str(), to.keys().cloned().collect()))
        .collect();
    assert!(
        edges["bench::runner"].contains("bench::context"),
        "the parser sees imports"
    );
    if let Some(c) = circle(&edges) {
        panic!("an import circle: {}", c.join(" -> "));
    }
}

type Edges<'a> = BTreeMap<&'a str, BTreeSet<String>>;

/// A circle of the graph, if it has one: depth-first search for a back
/// edge, and the path to it.
fn circle(edges: &Edges<'_>) -> Option<Vec<String>> {
    fn visit<'a>(
        m: &'a str,
        edges: &'a Edges<'_>,
        state: &mut BTreeMap<&'a str, bool>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(true) => return None,
            Some(false) => {
                let from = path.iter().position(|p| *p == m)?;
                let mut c: Vec<String> = path[from..].iter().map(|s| s.to_string()).collect();
                c.push(m.to_owned());
                return Some(c);
            }
            None => {}
        }
        state.insert(m, false);
        path.push(m);
        for t in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(t, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(m, true);
        None
    }
    let mut state = BTreeMap::new();
    edges
        .keys()
        .find_map(|m| visit(m, edges, &mut state, &mut Vec::new()))
}

#[test]
fn a_circle_is_found_and_named() {
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let mut e: Edges<'_> = BTreeMap::new();
    e.insert("a", set(&["b"]));
    e.insert("b", set(&["c"]));
    e.insert("c", set(&[]));
    assert_eq!(circle(&e), None);
    e.insert("c", set(&["a"]));
    assert_eq!(circle(&e).unwrap(), ["a", "b", "c", "a"]);
}

#[test]
fn the_parser_sees_groups_and_parents() {
    let code = "use crate::a::{b, c::d};\nuse super::e;\nlet x = crate::f::g(1);";
    let got: Vec<String> = paths(code).iter().map(|p| p.join("::")).collect();
    for want in ["crate::a::b", "crate::a::c", "super::e", "crate::f::g"] {
        assert!(got.iter().any(|g| g == want), "{want} in {got:?}");
    }
    let known: BTreeSet<String> = ["a", "a::b", "x::y", "x::e"].map(String::from).into();
    let p = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    assert_eq!(
        resolve(&p("crate::a::b::Thing"), "x::y", &known).as_deref(),
        Some("a::b")
    );
    assert_eq!(
        resolve(&p("super::e::f"), "x::y", &known).as_deref(),
        Some("x::e")
    );
}
