# sockbench recipes. `just --list` shows them; each has a plain cargo
# equivalent in the README for machines without `just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The main job: every back-end on every scenario, reports in reports/latest/
# (results.json, report.md, index.html); then the criterion codec benchmarks.
# `just bench --quick` is the two-minute run CI uses.
bench *args:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo run --release -- bench {{args}}
    case " {{args}} " in
        *" --quick "*) criterion=(--warm-up-time 0.2 --measurement-time 0.5) ;;
        *) criterion=() ;;
    esac
    cargo bench -p sockbench --bench codec -- "${criterion[@]}"

# Regenerate report.md and index.html from a results.json.
report file="reports/latest/results.json":
    cargo run --release -- report --in {{file}}

# The conformance suite on every back-end (or: just conform --spawn 'CMD').
conform *args="--backend all":
    cargo run --release -- conform {{args}}

# Model-based exploration of one server (or: just explore --spawn 'CMD');
# a divergence is shrunk and written to reports/latest/explore/.
explore *args="--backend mio":
    cargo run --release -- explore {{args}}

# UDP across two network namespaces impaired by netem, beside the relay
# (needs root, iproute2 and a kernel with the netem qdisc).
netem spec="loss=1%,delay=5ms,jitter=1ms,reorder=2%" *args:
    cargo run --release -- bench --netem {{spec}} {{args}}

# Gate the latest run against the committed baseline (exit 1 on a regression).
gate *args:
    cargo run --release -- gate --baseline reports/baseline --current reports/latest {{args}}

# Refresh the committed baseline: five pooled quick bench runs and a
# conformance run, into reports/baseline/ (commit it afterwards).
baseline runs="5":
    cargo run --release -- baseline --runs {{runs}}

# Fuzz the decoder and the session for SECONDS each, seeded with the golden
# vectors (installs cargo-fuzz if missing; RUSTC_BOOTSTRAP lets the stable
# toolchain take cargo-fuzz's sanitizer flags).
fuzz seconds="60":
    #!/usr/bin/env bash
    set -euo pipefail
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cargo run --release -- fuzz-corpus fuzz/corpus/decoder
    mkdir -p fuzz/corpus/session && cp fuzz/corpus/decoder/* fuzz/corpus/session/
    for target in decoder session; do
        RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" -- -max_total_time={{seconds}}
    done

# The robustness table: malformed input and fault cases on every back-end,
# quiet and under each condition (idle connections, load, an impairing
# proxy), into docs/robustness.md's conform block (about 8 minutes).
robustness:
    cargo run --release -- conform --backend all --cases '3.10,3.11,3.12,3.20,3.28,4.*,5.*,6.*,8.*' --under idle,load,impaired --matrix docs/robustness.md

# Soak every back-end and the Python peer at once for DURATION: resources
# sampled each second, a leak or a wrong reply fails; the slope table goes
# into docs/robustness.md's soak block.
soak duration="10m" *args:
    cargo run --release -- soak --backend all --spawn 'peer=python3 fixtures/peers/server.py' --duration {{duration}} --table docs/robustness.md {{args}}

# A fault proxy in front of a server: `just proxy 127.0.0.1:4000 --slice 1-64`.
proxy to *args:
    cargo run --release -- proxy --listen 127.0.0.1:0 --to {{to}} {{args}}

# The whole test suite (the README's test command).
test:
    cargo test --workspace --release

# Run one back-end as a server: `just serve mio --tcp 127.0.0.1:4000`.
serve backend="blocking" *args:
    cargo run --release -- serve --backend {{backend}} {{args}}

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Build the Python wheel with maturin and test it as a user would: a fresh
# venv, `pip install --no-index`, no Rust on PATH (target/wheels/). maturin
# leaves its md-5 build in target/release/; `cargo run` rebuilds OpenSSL's.
wheel:
    bash .ci/wheel

# Regenerate the man pages and shell completions the wheel installs
# (python/wheel-data; tests/cli.rs fails when they are stale).
wheel-data:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -q -p sockbench
    share=python/wheel-data/data/share
    rm -rf "$share" && mkdir -p "$share"/{bash-completion/completions,zsh/site-functions,fish/vendor_completions.d}
    target/release/sockbench man --dir "$share/man/man1"
    target/release/sockbench completions bash > "$share/bash-completion/completions/sockbench"
    target/release/sockbench completions zsh > "$share/zsh/site-functions/_sockbench"
    target/release/sockbench completions fish > "$share/fish/vendor_completions.d/sockbench.fish"

# What CI runs.
ci:
    bash .ci/run
