//! What a divergence leaves behind: `repro.json` (the program, its seed
//! and the divergence, which `replay` reads), `repro.py` (the same program
//! as a standalone Python replay) and `report.md`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sockbench_wire::{Endian, WireConfig};

use super::judge::Divergence;
use super::model::{self, Reply};
use super::program::{End, Head, Program, Slot};

/// The schema of repro.json.
pub const FORMAT: &str = "sockbench-explore-repro/1";

/// The contents of repro.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repro {
    /// [`FORMAT`].
    pub format: String,
    /// The explore run's seed and the program's number in it.
    pub seed: u64,
    /// Which program of the run.
    pub program_index: u64,
    /// The target explored, as given.
    pub target: String,
    /// Byte order of the prefix: `little` or `big`.
    pub endian: String,
    /// `--max-header` and `--max-body` the target runs with.
    pub max_header: u32,
    /// See `max_header`.
    pub max_body: u64,
    /// Seconds from the start of the run to the divergence.
    pub found_after_s: f64,
    /// Size of the program as generated: actions, bytes, cuts.
    pub original: [u64; 3],
    /// Size after shrinking.
    pub shrunk: [u64; 3],
    /// Shrinking's candidates tried and kept.
    pub shrink_tries: [usize; 2],
    /// Of three fresh runs of the shrunk program, how many diverged.
    pub reproduced: usize,
    /// The divergence of the shrunk program.
    pub divergence: Divergence,
    /// The shrunk program.
    pub program: Program,
    /// What was sent and received in the run that showed it.
    pub wire_log: Vec<String>,
}

impl Repro {
    /// The wire settings the program was generated for.
    pub fn wire(&self) -> WireConfig {
        WireConfig {
            endian: self.endian.parse().unwrap_or(Endian::Little),
            max_header: self.max_header,
            max_body: self.max_body,
        }
    }

    /// Reads a repro.json.
    pub fn read(path: &Path) -> anyhow::Result<Repro> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let r: Repro = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an explore repro.json", path.display()))?;
        anyhow::ensure!(
            r.format == FORMAT,
            "{}: format {:?}, expected {FORMAT:?}",
            path.display(),
            r.format
        );
        Ok(r)
    }
}

/// Writes repro.json, repro.py and report.md into `dir`.
pub fn write(dir: &Path, r: &Repro) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let put = |name: &str, text: String| {
        let path = dir.join(name);
        // Written whole, then renamed: never a partial file.
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write {}", path.display()))
    };
    put("repro.json", serde_json::to_string_pretty(r)? + "\n")?;
    put("repro.py", python(r)?)?;
    put("report.md", report(r))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ =
            std::fs::set_permissions(dir.join("repro.py"), std::fs::Permissions::from_mode(0o755));
    }
    Ok(())
}

/// The Python replay: the template with the program's bytes and the
/// model's predictions filled in (the header text as rendered here, so
/// Python's JSON encoder never has to agree with ours).
fn python(r: &Repro) -> anyhow::Result<String> {
    let p = &r.program;
    let expect = model::expect(p, r.wire());
    let conns: Vec<Value> = p
        .conns
        .iter()
        .map(|c| {
            json!({
                "actions": c.actions.iter().map(|a| {
                    let (h, prefix) = a.header();
                    json!({
                        "header": String::from_utf8_lossy(&h),
                        "prefix": prefix,
                        "with_body": matches!(a.head, Head::Fields { file_size: None, .. }),
                        "body": a.body,
                        "sent": a.sent,
                    })
                }).collect::<Vec<_>>(),
                "cuts": c.cuts,
                "pauses": c.pauses,
                "depth": c.depth,
                "end": c.end,
            })
        })
        .collect();
    let expected: Vec<Value> = expect
        .conns
        .iter()
        .map(|e| {
            json!({
                "closes": e.closes,
                "replies": e.replies.iter().map(|rep| match rep {
                    Reply::None => json!({"reply": "none", "len": 0}),
                    Reply::Echo(b) => json!({"reply": "echo", "len": b.len()}),
                    Reply::Partial(_) => json!({"reply": "partial", "len": 0}),
                    Reply::Frame(b) => json!({
                        "reply": "frame",
                        "len": b.len(),
                        "header": String::from_utf8_lossy(&b[4..]),
                    }),
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let schedule: Vec<Value> = p
        .schedule
        .iter()
        .map(|s| match s {
            Slot::Tcp(c) => json!(["tcp", c]),
            Slot::Udp(d) => json!(["udp", d]),
        })
        .collect();
    let blob = json!({
        "files": expect.files,
        "storage_divergence": r.divergence.conn.is_none()
            && r.divergence.action.is_none()
            && r.divergence.what != "the server exited",
        "endian": r.endian,
        "divergence": r.divergence.what,
        "conns": conns,
        "udp": p.udp,
        "schedule": schedule,
        "expected": expected,
    });
    let text = serde_json::to_string(&blob)?;
    let quoted = text.replace('\\', "\\\\").replace('\'', "\\'");
    Ok(include_str!("repro.py").replace("__REPRO__", &quoted))
}

/// report.md: the divergence, the program, the wire log, how to replay.
pub fn report(r: &Repro) -> String {
    let d = &r.divergence;
    let mut s = String::new();
    let _ = writeln!(s, "# sockbench explore: divergence\n");
    let _ = writeln!(
        s,
        "Target `{}`, seed {}, program {} (found after {:.1} s). Shrunk from {} actions / {} bytes / {} cuts to {} / {} / {} in {} tries ({} kept); the shrunk program diverged in {} of 3 fresh runs.\n",
        r.target,
        r.seed,
        r.program_index,
        r.found_after_s,
        r.original[0],
        r.original[1],
        r.original[2],
        r.shrunk[0],
        r.shrunk[1],
        r.shrunk[2],
        r.shrink_tries[0],
        r.shrink_tries[1],
        r.reproduced
    );
    let place = match (d.conn, d.action) {
        (Some(c), Some(a)) => format!("connection {c}, action {a}: "),
        (Some(c), None) => format!("connection {c}: "),
        (None, Some(a)) => format!("datagram {a}: "),
        (None, None) => String::new(),
    };
    let _ = writeln!(s, "**{place}{}**\n", d.what);
    let _ = writeln!(s, "- expected: `{}`", d.expected.replace('`', "'"));
    let _ = writeln!(s, "- actual: `{}`\n", d.actual.replace('`', "'"));
    let _ = writeln!(s, "## The program\n");
    let _ = writeln!(
        s,
        "| connection | action | kind | header | body | sent |\n|---|---|---|---|---|---|"
    );
    for (c, conn) in r.program.conns.iter().enumerate() {
        for (i, a) in conn.actions.iter().enumerate() {
            let (h, n) = a.header();
            let mut h = String::from_utf8_lossy(&h).into_owned();
            if h.chars().count() > 120 {
                h = h.chars().take(117).collect::<String>() + "...";
            }
            let prefix = if n as usize != a.header().0.len() {
                format!(" (prefix says {n})")
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "| {c} | {i} | {} | `{}`{prefix} | {} B | {} |",
                a.kind,
                h.replace('|', "\\|").replace('`', "'"),
                a.body.len,
                a.sent.map_or("all".into(), |n| format!("first {n} B"))
            );
        }
        let _ = writeln!(
            s,
            "\nConnection {c}: cut at {:?}, pauses {:?} ms, depth {}, ends with {}.\n",
            conn.cuts,
            conn.pauses,
            conn.depth,
            match conn.end {
                End::Close => "a close after the replies",
                End::HalfClose => "a half-close",
                End::Reset => "a reset",
            }
        );
    }
    if !r.program.udp.is_empty() {
        let sizes: Vec<u64> = r.program.udp.iter().map(|b| b.len).collect();
        let _ = writeln!(s, "UDP datagrams of {sizes:?} bytes.\n");
    }
    let _ = writeln!(s, "## Wire log\n\n```");
    for l in &r.wire_log {
        let _ = writeln!(s, "{l}");
    }
    let _ = writeln!(s, "```\n\n## Replay\n");
    let _ = writeln!(
        s,
        "- `sockbench replay repro.json --spawn 'CMD'` (or `--backend NAME`, `--tcp ADDR --udp ADDR`): exit 1 while the divergence reproduces, 0 once the server behaves as the model.\n- `python3 repro.py --tcp HOST:PORT --udp HOST:PORT`: the same without sockbench."
    );
    s
}
