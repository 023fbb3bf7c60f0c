//! `sockbench-codec WARMUP_MS REPS REP_MS`: the codec table of `sockbench
//! bench`, measured in a process of its own that counts allocations, and
//! printed as JSON. `bench` runs it beside its own executable.

use std::process::ExitCode;
use std::time::Duration;

use sockbench::bench::driver::Schedule;

#[global_allocator]
static ALLOC: sockbench::measure::alloc_count::Counting = sockbench::measure::alloc_count::Counting;

fn main() -> ExitCode {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    let [warmup, reps, rep] = args[..] else {
        eprintln!("usage: sockbench-codec WARMUP_MS REPS REP_MS");
        return ExitCode::from(2);
    };
    let schedule = Schedule {
        warmup: Duration::from_millis(warmup),
        reps: reps.max(1) as usize,
        rep: Duration::from_millis(rep),
    };
    let results = sockbench::bench::micro::run(&schedule);
    match serde_json::to_string(&results) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sockbench-codec: {e}");
            ExitCode::from(2)
        }
    }
}
