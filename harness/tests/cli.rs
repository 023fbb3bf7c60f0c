//! The CLI's generated documents: the man pages and shell completions the
//! wheel installs (python/wheel-data, pyproject.toml) name every command and
//! are what the binary generates now.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory as _;

use common::{exe, root};

/// Where the wheel's data lives, under `share/`.
fn share() -> PathBuf {
    root().join("python/wheel-data/data/share")
}

/// The completion files, by shell, as the wheel installs them.
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "bash-completion/completions/sockbench"),
    ("zsh", "zsh/site-functions/_sockbench"),
    ("fish", "fish/vendor_completions.d/sockbench.fish"),
];

/// The subcommands a user is shown (`--help`), by name.
fn visible_subcommands() -> Vec<String> {
    sockbench::cli::Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .collect()
}

fn generated_man_pages() -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(exe())
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "sockbench man --dir: {out:?}");
    read_dir(dir.path())
}

fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn the_man_page_names_every_subcommand_and_each_has_a_page() {
    let pages = generated_man_pages();
    let top = String::from_utf8(pages["sockbench.1"].clone()).unwrap();
    let listed = top
        .split(".SH SUBCOMMANDS")
        .nth(1)
        .expect("sockbench.1 has a SUBCOMMANDS section");
    let subcommands = visible_subcommands();
    assert!(subcommands.len() >= 12, "{subcommands:?}");
    for name in &subcommands {
        // roff escapes the hyphen: sockbench\-conform(1).
        assert!(
            listed.contains(&format!("sockbench\\-{}(1)", name.replace('-', "\\-"))),
            "sockbench.1 does not list {name}"
        );
        let page = format!("sockbench-{name}.1");
        let text =
            String::from_utf8_lossy(pages.get(&page).unwrap_or_else(|| {
                panic!("no {page} among {:?}", pages.keys().collect::<Vec<_>>())
            }));
        assert!(text.contains(".SH OPTIONS"), "{page} documents no options");
    }
    // Hidden plumbing (udp-probe, ceiling, fuzz-corpus) gets no page.
    assert!(!pages.contains_key("sockbench-udp-probe.1"));
}

#[test]
fn the_wheels_man_pages_are_what_the_cli_generates() {
    let committed = read_dir(&share().join("man/man1"));
    let generated = generated_man_pages();
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "python/wheel-data's man pages are not the CLI's: run `just wheel-data`"
    );
    for (name, text) in &generated {
        assert!(
            committed[name] == *text,
            "python/wheel-data's {name} is stale: run `just wheel-data`"
        );
    }
}

#[test]
fn the_wheels_completions_are_what_the_cli_generates() {
    for (shell, file) in COMPLETIONS {
        let out = Command::new(exe())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "completions {shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        for name in visible_subcommands() {
            assert!(text.contains(&name), "the {shell} completion lacks {name}");
        }
        let committed = std::fs::read_to_string(share().join(file)).unwrap_or_default();
        assert!(
            committed == text,
            "python/wheel-data's {file} is stale: run `just wheel-data`"
        );
    }
}

#[test]
fn an_unknown_shell_is_one_line_and_exit_2() {
    let out = Command::new(exe())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("tcsh"), "{err}");
}
