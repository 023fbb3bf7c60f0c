//! A conformance run's findings as every renderer leads with them: the
//! terminal's lines, report.md's section, index.html's section. In the
//! language of `crate::lang::current()`.

use std::fmt::Write;

use super::escape;
use crate::analysis::findings::{of, words};
use crate::lang::{Lang, current, tr_in};
use crate::schema::conform::{ConformRun, Finding};

/// Cases named inline before "and N more".
const NAMED: usize = 6;

fn case_list(f: &Finding) -> String {
    let mut s = f
        .cases
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if f.cases.len() > NAMED {
        let _ = write!(s, " +{}", f.cases.len() - NAMED);
    }
    s
}

/// The terminal's findings: per target, a line saying how many, then per
/// finding its title, what happened in its evidence case, and the advice.
pub fn terminal(run: &ConformRun) -> String {
    let lang = current();
    let mut s = String::new();
    for t in &run.targets {
        let found = of(run, &t.name);
        if found.is_empty() {
            let _ = writeln!(s, "{}", tr_in(lang, "ui.none", &[("target", &t.name)]));
            continue;
        }
        let n = found.len().to_string();
        let _ = writeln!(
            s,
            "{}",
            tr_in(lang, "ui.found", &[("target", &t.name), ("count", &n)])
        );
        for (i, f) in found.iter().enumerate() {
            let (title, advice) = words(f, lang);
            let _ = writeln!(
                s,
                "  {}. [{}] {title} ({} {})",
                i + 1,
                f.id,
                tr_in(lang, "ui.cases", &[]),
                case_list(f)
            );
            let _ = writeln!(
                s,
                "     {} {}: {}",
                f.evidence.case,
                tr_in(lang, "ui.happened", &[]),
                f.evidence.actual
            );
            if !f.follows.is_empty() {
                let n = f.follows.len().to_string();
                let _ = writeln!(s, "     {}", tr_in(lang, "ui.follows", &[("count", &n)]));
            }
            let _ = writeln!(s, "     → {advice}");
        }
    }
    s
}

/// report.md's findings section.
pub fn markdown(run: &ConformRun) -> String {
    let lang = current();
    let mut s = String::new();
    let _ = writeln!(s, "## {}\n", tr_in(lang, "ui.findings", &[]));
    for t in &run.targets {
        let found = of(run, &t.name);
        if found.is_empty() {
            let _ = writeln!(s, "{}\n", tr_in(lang, "ui.none", &[("target", &t.name)]));
            continue;
        }
        for f in found {
            let (title, advice) = words(f, lang);
            let _ = writeln!(s, "### `{}` on {}: {title}\n", f.id, t.name);
            let _ = writeln!(
                s,
                "{}: {}\n",
                tr_in(lang, "ui.cases", &[]),
                f.cases.join(", ")
            );
            if !f.follows.is_empty() {
                let n = f.follows.len().to_string();
                let _ = writeln!(
                    s,
                    "{}: {}\n",
                    tr_in(lang, "ui.follows", &[("count", &n)]),
                    f.follows.join(", ")
                );
            }
            let _ = writeln!(
                s,
                "{} ({}):\n",
                tr_in(lang, "ui.evidence", &[]),
                f.evidence.case
            );
            if !f.evidence.steps.is_empty() {
                let _ = writeln!(s, "```text");
                for step in &f.evidence.steps {
                    let _ = writeln!(s, "{step}");
                }
                let _ = writeln!(s, "```\n");
            }
            if !f.evidence.expected.is_empty() {
                let _ = writeln!(
                    s,
                    "- {}: {}",
                    tr_in(lang, "ui.expected", &[]),
                    f.evidence.expected
                );
            }
            let _ = writeln!(
                s,
                "- {}: {}",
                tr_in(lang, "ui.happened", &[]),
                f.evidence.actual
            );
            let _ = writeln!(s, "- {}: {advice}\n", tr_in(lang, "ui.advice", &[]));
        }
    }
    s
}

/// index.html's findings section.
pub fn html(run: &ConformRun) -> String {
    let lang = current();
    let mut s = String::new();
    let _ = writeln!(s, "<h2>{}</h2>", escape(&tr_in(lang, "ui.findings", &[])));
    for t in &run.targets {
        let found = of(run, &t.name);
        if found.is_empty() {
            let _ = writeln!(
                s,
                "<p class=ok>{}</p>",
                escape(&tr_in(lang, "ui.none", &[("target", &t.name)]))
            );
            continue;
        }
        for f in found {
            let (title, advice) = words(f, lang);
            let _ = writeln!(
                s,
                "<div class=finding id=\"finding-{}-{}\"><h3><code>{}</code> {}</h3><p>{} {}: {}</p>",
                escape(&t.name),
                escape(&f.id),
                escape(&f.id),
                escape(&title),
                escape(&t.name),
                escape(&tr_in(lang, "ui.cases", &[])),
                f.cases
                    .iter()
                    .map(|c| format!("<a href=\"#{}\">{}</a>", anchor_of(&t.name, c), escape(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !f.follows.is_empty() {
                let n = f.follows.len().to_string();
                let _ = writeln!(
                    s,
                    "<p>{}: {}</p>",
                    escape(&tr_in(lang, "ui.follows", &[("count", &n)])),
                    escape(&f.follows.join(", "))
                );
            }
            let _ = writeln!(
                s,
                "<p>{} ({}):</p><pre>{}</pre>",
                escape(&tr_in(lang, "ui.evidence", &[])),
                escape(&f.evidence.case),
                escape(&f.evidence.steps.join("\n"))
            );
            let _ = writeln!(
                s,
                "<ul><li>{}: {}</li><li>{}: {}</li><li><b>{}</b>: {}</li></ul></div>",
                escape(&tr_in(lang, "ui.expected", &[])),
                escape(&f.evidence.expected),
                escape(&tr_in(lang, "ui.happened", &[])),
                escape(&f.evidence.actual),
                escape(&tr_in(lang, "ui.advice", &[])),
                escape(&advice)
            );
        }
    }
    s
}

/// The id of a case's evidence on a target in index.html, for links.
pub fn anchor_of(target: &str, case: &str) -> String {
    format!("{target}-{case}").replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
}

/// The HTML `lang` attribute of the current language.
pub fn html_lang() -> &'static str {
    match current() {
        Lang::En => "en",
        Lang::ZhCn => "zh-CN",
    }
}
