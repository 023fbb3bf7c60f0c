//! The codec comparison, with the same discipline as the rest: warm-up,
//! repetitions, median and spread, and allocations per operation from the
//! counting allocator. It runs in `sockbench-codec`, the one executable
//! with that allocator ([`in_child`]), so `sockbench serve` has none.

use std::hint::black_box;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;

use super::codec::{Codec, ops};
use super::driver::Schedule;
use crate::measure::alloc_count;
use crate::measure::stats::Summary;
use crate::schema::bench::CodecResult;

/// Runs [`run`] in `sockbench-codec`, found beside `exe`.
pub fn in_child(exe: &Path, schedule: &Schedule) -> anyhow::Result<Vec<CodecResult>> {
    let codec = exe.with_file_name("sockbench-codec");
    let ms = |d: std::time::Duration| d.as_millis().to_string();
    let out = Command::new(&codec)
        .args([
            ms(schedule.warmup),
            schedule.reps.to_string(),
            ms(schedule.rep),
        ])
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (cargo build --release builds it)",
                codec.display()
            )
        })?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        codec.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{} printed no results", codec.display()))
}

/// Measures every codec operation, ours and the alternative. Allocations
/// count only in a process with the counting allocator installed.
pub fn run(schedule: &Schedule) -> Vec<CodecResult> {
    ops()
        .into_iter()
        .map(|op| CodecResult {
            operation: op.name.into(),
            ours_ns: time((op.ours)(), &op.input, schedule),
            alternative_ns: time((op.alternative)(), &op.input, schedule),
            ours_allocs: allocs((op.ours)(), &op.input),
            alternative_allocs: allocs((op.alternative)(), &op.input),
        })
        .collect()
}

/// Allocations per call in steady state: the first call, which grows the
/// state's buffers, is not counted.
fn allocs(mut f: Codec, input: &[u8]) -> f64 {
    black_box(f(input));
    let (_, n) = alloc_count::count(|| {
        (0..10)
            .map(|_| black_box(f(black_box(input))))
            .sum::<usize>()
    });
    n as f64 / 10.0
}

fn time(mut f: Codec, input: &[u8], schedule: &Schedule) -> Summary {
    let mut run_for = |d: std::time::Duration| {
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < d {
            for _ in 0..32 {
                black_box(f(black_box(input)));
            }
            n += 32;
        }
        t.elapsed().as_nanos() as f64 / n as f64
    };
    run_for(schedule.warmup);
    Summary::of(
        &(0..schedule.reps)
            .map(|_| run_for(schedule.rep))
            .collect::<Vec<_>>(),
    )
}
