//! The harness's modules form layers: no module reaches, through its `use`
//! and `crate::`/`super::` paths, a module that reaches it back. Read from
//! the source, so an import circle fails here before anyone has to untangle it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src`, by path (`bench::context`), with its source
/// minus comments and unit tests.
fn modules(src: &Path) -> BTreeMap<String, String> {
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
            if parts == ["lib"] || parts == ["main"] {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(parts.join("::"), code);
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

#[test]
fn the_harness_has_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let known: BTreeSet<String> = mods.keys().cloned().collect();
    assert!(known.len() > 50, "the walk found the modules: {known:?}");
    let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in &mods {
        let to = edges.entry(m).or_default();
        for p in paths(code) {
            if let Some(t) = resolve(&p, m, &known) {
                // A module may use its own children; that is not a layer.
                if t != *m && !t.starts_with(&format!("{m}::")) && !m.starts_with(&format!("{t}::"))
                {
                    to.insert(t);
                }
            }
        }
    }
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
