# sockbench recipes. `just --list` shows them; each has a plain cargo
# equivalent in the README for machines without `just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The whole test suite (the README's test command).
test:
    cargo test --workspace

# Run one back-end as a server: `just serve mio --tcp 127.0.0.1:4000`.
serve backend="blocking" *args:
    cargo run --release -- serve --backend {{backend}} {{args}}

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# What CI runs.
ci:
    bash .ci/run
