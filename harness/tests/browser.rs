//! The HTML reports in a real browser: headless Chromium opens the bench
//! and the conformance index.html (rendered from the committed baseline),
//! fails on any console line (the pages' self-check reports a zero-size
//! SVG there, and an uncaught error lands there too) and saves a
//! screenshot of each under reports/latest/.
//!
//! Where Chromium is missing the test says so and skips; under CI=true
//! (where .ci/run installs it) a missing browser is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Renders `results` into `dir` with `sockbench report`; returns index.html.
fn render(results: &Path, dir: &Path) -> PathBuf {
    let o = Command::new(env!("CARGO_BIN_EXE_sockbench"))
        .args(["report", "--in"])
        .arg(results)
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.join("index.html")
}

/// Opens `page` headless, screenshots it to `png`, returns its console lines.
fn open(browser: &str, page: &Path, png: &Path, height: u32) -> Vec<String> {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--window-size=1400,{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{browser} did not finish with {} in 90 s", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_bench_and_conformance_reports_render_cleanly_in_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true but Chromium is not installed (.ci/run installs Debian's chromium)"
        );
        eprintln!("skipped: Chromium is not installed (apt-get install chromium)");
        return;
    };
    let root = repo();
    let shots = root.join("reports/latest");
    std::fs::create_dir_all(&shots).unwrap();
    let d = tempfile::tempdir().unwrap();
    for (name, results, height) in [
        ("bench", "reports/baseline/results.json", 2200),
        ("conform", "reports/baseline/conform/results.json", 1400),
    ] {
        let dir = d.path().join(name);
        let page = render(&root.join(results), &dir);
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            html.contains("<svg") || name == "conform",
            "{name}: no chart at all"
        );
        let png = shots.join(format!("screenshot-{name}.png"));
        let _ = std::fs::remove_file(&png);
        let console = open(browser, &page, &png, height);
        assert!(
            console.is_empty(),
            "{name} index.html wrote to the console:\n{}",
            console.join("\n")
        );
        let size = std::fs::metadata(&png).map_or(0, |m| m.len());
        assert!(
            size > 10_000,
            "{name}: screenshot {} is {size} bytes",
            png.display()
        );
    }
}

/// The check itself can fail: a page with a zero-size chart is caught.
#[test]
fn a_zero_size_chart_is_caught() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: Chromium is not installed");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let page = d.path().join("index.html");
    std::fs::write(
        &page,
        format!(
            "<!doctype html><html><body><svg width=0 height=0></svg>{}</body></html>",
            sockbench::report::SELF_CHECK
        ),
    )
    .unwrap();
    let console = open(browser, &page, &d.path().join("shot.png"), 400);
    assert!(
        console.iter().any(|l| l.contains("has zero size")),
        "{console:?}"
    );
}
