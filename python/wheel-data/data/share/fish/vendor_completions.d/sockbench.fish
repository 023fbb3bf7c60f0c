# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sockbench_global_optspecs
    string join \n v/verbose q/quiet lang= h/help V/version
end

function __fish_sockbench_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sockbench_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sockbench_using_subcommand
    set -l cmd (__fish_sockbench_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sockbench -n "__fish_sockbench_needs_command" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_needs_command" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_needs_command" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_needs_command" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "serve" -d 'Run one back-end as a server (the process contract of docs/protocol.md)'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "conform" -d 'Check servers against the protocol: our back-ends or anybody\'s'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "bench" -d 'Measure the back-ends on identical scenarios; write reports/latest/'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "explore" -d 'Model-based testing of any server: generated programs, every reply predicted by the protocol\'s model, a divergence shrunk to a repro'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "replay" -d 'Run an explore repro.json again: exit 1 while it still diverges'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "load" -d 'Open-loop load against any address: a schedule of intended send times, latency measured from them (like wrk2 or `iperf3 -c`)'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "soak" -d 'A mixed workload for a long time, the server\'s memory, file descriptors and threads sampled every second: exit 1 on a leak or a wrong reply'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "proxy" -d 'A TCP proxy that re-segments, delays, throttles or resets the streams it carries (seeded), for anybody\'s client and server'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "learn" -d 'Infer the dialect of your own server and client from what crosses the wire between them; writes dialect.toml for conform --dialect'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "merge" -d 'Merge `load --json` results from several hosts into one'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "report" -d 'Regenerate report.md and index.html from a results.json'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "gate" -d 'Compare a run with a baseline; exit 1 on a regression'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "baseline" -d 'Refresh reports/baseline/: pooled quick bench runs and a conformance run'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "completions" -d 'Print a shell completion script: `sockbench completions bash > ~/.local/share/bash-completion/completions/sockbench`'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "man" -d 'Print the man page (`sockbench man | man -l -`), or write one page per subcommand into a directory'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "fuzz-corpus" -d 'Write the golden vectors\' input streams as a fuzzing seed corpus'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "udp-probe" -d 'One sequenced UDP probe, printed as JSON (used by the netem mode)'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "ceiling" -d 'The bench\'s ceilings as a process of their own: an unframed TCP echo and a raw UDP echo, announced with a ready line like `serve`'
complete -c sockbench -n "__fish_sockbench_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -s b -l backend -d 'The back-end: blocking, threaded, mio, tokio, uring or percore' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l tcp -d 'TCP address to listen on' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l udp -d 'UDP address to bind' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l storage -d 'Storage directory for uploads (created if missing); default: a fresh temporary directory removed at exit' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l max-header -d 'Largest header in bytes (suffixes K, M, G, KiB... allowed)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l max-body -d 'Largest body in bytes' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l endian -d 'Byte order of the length prefix: little or big' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l idle-timeout -d 'Close a connection silent (or not reading) for this many seconds' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l grace -d 'On SIGTERM, seconds that frames in progress may take to finish' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l header-timeout -d 'Seconds from a frame\'s first byte to the end of its header (slowloris)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l max-connections -d 'Most connections served at once (concurrent back-ends)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l workers -d 'Worker threads of pooled back-ends (default: one per core)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l test-max-write -d 'Test only: write at most N bytes per system call (a deliberately slow back-end for the gate\'s own tests)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -l no-fsync -d 'Do not fsync uploads before acknowledging them'
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand serve" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l backend -d 'Our back-ends, each started as `sockbench serve`: `all` or names' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l spawn -d 'A command that obeys the serve contract, e.g. \'python3 server.py\' (repeatable); `LABEL=CMD` names its column' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l tcp -d 'A server already listening at this TCP address (HOST:PORT)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l udp -d 'Its UDP address; without it the UDP cases and scenarios are not run. Alone (no --tcp), a UDP-only target: conform and explore' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l storage -d 'Its storage directory, so uploads can be inspected' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l pid -d 'Its process id, for memory and resource measurements' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l name -d 'Its column name (default: the address as given)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l endian -d 'Its byte order' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l max-header -d 'Its --max-header' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l dialect -d 'How the target frames, names and answers: `sockbench` (the contract), `lesson` (the course\'s upload server), or a TOML file (docs/dialects.md; `sockbench learn` writes one). Our back-ends always speak `sockbench`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l max-body -d 'Its --max-body' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l cases -d 'Only cases whose id or name matches one of these globs (`2.*`, `udp-*`)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l family -d 'The address family spawned servers listen on, for every case (`ipv6`: `--tcp [::1]:0 --udp [::1]:0`; the oversize limit follows)' -r -f -a "ipv4\t'127.0.0.1'
ipv6\t'::1'"
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l under -d 'Also run the cases under these conditions, each a column beside the quiet one: `idle` (idle connections held open), `load` (a background echo load), `impaired` (every TCP connection through a re-segmenting, jittering proxy)' -r -f -a "quiet\t'Nothing else: the plain catalogue'
idle\t'Idle connections held open to the server during every case'
load\t'A background echo load during every case'
impaired\t'Every TCP connection of the case through a proxy that re-segments (seeded) and delays'"
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l under-rate -d 'Background echoes per second for `--under load`, per case running (default: half the target\'s measured capacity over --jobs)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l under-idle -d 'Idle connections for `--under idle`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l exclude -d 'Leave out cases whose id or name matches one of these globs' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l known-failing -d 'Cases expected to fail (`ID` or `TARGET:ID` per line); one that passes fails the run, because the list is stale' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l seed -d 'Seed of every case\'s randomness (printed in every report)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l jobs -d 'Cases run at once (default: CPUs, at least 2)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l timeout -d 'Bound on the whole run, in seconds' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l out -d 'Directory for results.json, report.md and index.html' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l junit -d 'Also write JUnit XML here' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l matrix -d 'Also write the case x target matrix, with its robustness summary (crashes, leaked files, memory bounds), as a Markdown document here' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l format -d 'Format of --list' -r -f -a "text\t'One line per case'
markdown\t'docs/cases.md'
json\t'JSON array'"
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l rerun -d 'Run a failed case this many times more; one that then passes is reported as the finding `flaky`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l client -d 'Test a client instead of a server: the command that runs it, with {tcp_port}, {udp_port}, {file} (input sockbench made), {out} (where to write a fetched body) and {dir}; exit 127 or 89 means "not supported"' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l client-task -d 'What the client does: `upload` {file}, `fetch` one framed reply, `echo` each line of {file}, or `session` (its own checks against a sockbench server)' -r -f -a "upload\t'Sends `{file}` as one upload frame (and reads the reply, if the dialect has one)'
fetch\t'Sends anything (a command, a request), then writes the one framed reply\'s body to `{out}` or stdout'
echo\t'Sends each line of `{file}` as a frame, prints each echoed body'
session\t'Runs its own checks against a server of the `sockbench` contract (our blocking back-end behind the case\'s delivery); judged by its exit status'"
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l client-output -d 'Where a fetching client puts the body: stdout, or a file ({out}, or the name in the reply\'s header, in its directory)' -r -f -a "stdout\t'Printed on stdout (the command client\'s output)'
file\t'Written to `{out}`, or to the name the reply\'s header carries, in its working directory (a download)'"
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l stdin -d 'The client\'s stdin (an interactive client\'s answers), with the placeholders filled in; without it, stdin is empty' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l client-explore -d 'Random segmentations of the fetch reply the explore case (9.33) draws; a failure is shrunk to the fewest cuts (0: not run)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l client-timeout -d 'How long the client has per case before it is said to hang' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l not-concurrent -d 'It serves one connection at a time'
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l list -d 'Print the catalogue instead of running it'
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l no-progress -d 'No progress bar'
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l allow-flaky -d 'A flaky case does not fail the run (it is still reported)'
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -l client-udp -d 'The echo task over UDP: each line a datagram'
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand conform" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l backend -d 'Our back-ends, each started as `sockbench serve`: `all` or names' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l spawn -d 'A command that obeys the serve contract, e.g. \'python3 server.py\' (repeatable); `LABEL=CMD` names its column' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l tcp -d 'A server already listening at this TCP address (HOST:PORT)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l udp -d 'Its UDP address; without it the UDP cases and scenarios are not run. Alone (no --tcp), a UDP-only target: conform and explore' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l storage -d 'Its storage directory, so uploads can be inspected' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l pid -d 'Its process id, for memory and resource measurements' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l name -d 'Its column name (default: the address as given)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l endian -d 'Its byte order' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l max-header -d 'Its --max-header' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l dialect -d 'How the target frames, names and answers: `sockbench` (the contract), `lesson` (the course\'s upload server), or a TOML file (docs/dialects.md; `sockbench learn` writes one). Our back-ends always speak `sockbench`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l max-body -d 'Its --max-body' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l slo -d 'The latency target of the capacity search: p50, p90, p99 or p999 and a bound in us or ms' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l scenario -d 'Scenario families to run (default: all): capacity, echo, upload, udp, many, codec' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l only -d 'Only this configuration, as the report names it: `SCENARIO KEY` (`echo rr/64B/16c`), or a whole `SCENARIO`; repeatable. What the gate\'s confirming run uses to re-measure only what regressed' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l out -d 'Where results.json, report.md and index.html go' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l seed -d 'Seed of the payloads' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l reps -d 'Measured repetitions (at least 5)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l rep-ms -d 'Length of a repetition in milliseconds' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l warmup-ms -d 'Warm-up in milliseconds' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l upload -d 'Upload size (suffixes K, M, G allowed)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l idle -d 'Idle connections of the many-connections scenario' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l netem -d 'Run the UDP probe across two network namespaces impaired by netem (`loss=1%,delay=5ms,jitter=1ms,reorder=2%`, or `none`) beside the relay, instead of the scenarios. Needs root, iproute2 and the netem qdisc' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l quick -d 'The short run CI uses (about 4 minutes): shorter repetitions, a 64 MiB upload instead of 1 GiB, no Python peer'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l not-concurrent -d 'It serves one connection at a time'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l no-peer -d 'Leave the Python peer out of the full run'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l no-progress -d 'No progress bars'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l no-pin -d 'Do not pin the load driver and the server to separate CPUs'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l anchors -d 'Run iperf3 and sockperf beside the ceilings (the default in a full run; a tool not installed is one line in the report)'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -l no-anchors -d 'Do not run iperf3 and sockperf, even in a full run'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand bench" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l backend -d 'Our back-ends, each started as `sockbench serve`: `all` or names' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l spawn -d 'A command that obeys the serve contract, e.g. \'python3 server.py\' (repeatable); `LABEL=CMD` names its column' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l tcp -d 'A server already listening at this TCP address (HOST:PORT)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l udp -d 'Its UDP address; without it the UDP cases and scenarios are not run. Alone (no --tcp), a UDP-only target: conform and explore' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l storage -d 'Its storage directory, so uploads can be inspected' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l pid -d 'Its process id, for memory and resource measurements' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l name -d 'Its column name (default: the address as given)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l endian -d 'Its byte order' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l max-header -d 'Its --max-header' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l dialect -d 'How the target frames, names and answers: `sockbench` (the contract), `lesson` (the course\'s upload server), or a TOML file (docs/dialects.md; `sockbench learn` writes one). Our back-ends always speak `sockbench`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l max-body -d 'Its --max-body' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l time -d 'Stop after this many seconds' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l programs -d 'Stop after this many programs' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l seed -d 'Seed of the programs (default: from the clock, printed)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l jobs -d 'Programs run at once, each job against a server of its own when the harness starts them' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l out -d 'Where repro.json, repro.py and report.md go' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l shrink-time -d 'Time shrinking may take, seconds' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l not-concurrent -d 'It serves one connection at a time'
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -l no-udp -d 'Send no UDP'
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand explore" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l backend -d 'Our back-ends, each started as `sockbench serve`: `all` or names' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l spawn -d 'A command that obeys the serve contract, e.g. \'python3 server.py\' (repeatable); `LABEL=CMD` names its column' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l tcp -d 'A server already listening at this TCP address (HOST:PORT)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l udp -d 'Its UDP address; without it the UDP cases and scenarios are not run. Alone (no --tcp), a UDP-only target: conform and explore' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l storage -d 'Its storage directory, so uploads can be inspected' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l pid -d 'Its process id, for memory and resource measurements' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l name -d 'Its column name (default: the address as given)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l endian -d 'Its byte order' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l max-header -d 'Its --max-header' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l dialect -d 'How the target frames, names and answers: `sockbench` (the contract), `lesson` (the course\'s upload server), or a TOML file (docs/dialects.md; `sockbench learn` writes one). Our back-ends always speak `sockbench`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l max-body -d 'Its --max-body' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -l not-concurrent -d 'It serves one connection at a time'
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand replay" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l backend -d 'Our back-ends, each started as `sockbench serve`: `all` or names' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l spawn -d 'A command that obeys the serve contract, e.g. \'python3 server.py\' (repeatable); `LABEL=CMD` names its column' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l tcp -d 'A server already listening at this TCP address (HOST:PORT)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l udp -d 'Its UDP address; without it the UDP cases and scenarios are not run. Alone (no --tcp), a UDP-only target: conform and explore' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l storage -d 'Its storage directory, so uploads can be inspected' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l pid -d 'Its process id, for memory and resource measurements' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l name -d 'Its column name (default: the address as given)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l endian -d 'Its byte order' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l max-header -d 'Its --max-header' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l dialect -d 'How the target frames, names and answers: `sockbench` (the contract), `lesson` (the course\'s upload server), or a TOML file (docs/dialects.md; `sockbench learn` writes one). Our back-ends always speak `sockbench`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l max-body -d 'Its --max-body' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l rate -d 'Offered requests per second, over all connections' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l duration -d 'How long to measure: `10s`, `500ms`, `2m` (a bare number is seconds)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l connections -d 'Connections; the rate is split evenly over them' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l body -d 'Body bytes of each echo request (suffixes K, M allowed)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l arrival -d 'How requests arrive: evenly spaced, or a Poisson process' -r -f -a "constant\t'Evenly spaced (wrk2\'s model)'
poisson\t'Exponential gaps: a Poisson process of the same mean rate'"
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l pipeline -d 'Most requests in flight per connection; past it a request waits (and its latency still counts from its intended time)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l warmup -d 'Sent before the measured duration and not recorded' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l timeout -d 'A request with no reply this long after its intended send time is a timeout' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l seed -d 'Seed of the payload and of Poisson gaps' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l histogram -d 'Also write the latency distribution (HdrHistogram percentile text, µs) to FILE' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l not-concurrent -d 'It serves one connection at a time'
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l no-spin -d 'Sleep until each send instead of busy-polling the last 2 ms (saves the driver\'s core; on a VM, sleeping threads wake late and the driver lags)'
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -l json -d 'Print exactly one JSON object on stdout instead of the summary'
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand load" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l backend -d 'Our back-ends, each started as `sockbench serve`: `all` or names' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l spawn -d 'A command that obeys the serve contract, e.g. \'python3 server.py\' (repeatable); `LABEL=CMD` names its column' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l tcp -d 'A server already listening at this TCP address (HOST:PORT)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l udp -d 'Its UDP address; without it the UDP cases and scenarios are not run. Alone (no --tcp), a UDP-only target: conform and explore' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l storage -d 'Its storage directory, so uploads can be inspected' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l pid -d 'Its process id, for memory and resource measurements' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l name -d 'Its column name (default: the address as given)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l endian -d 'Its byte order' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l max-header -d 'Its --max-header' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l dialect -d 'How the target frames, names and answers: `sockbench` (the contract), `lesson` (the course\'s upload server), or a TOML file (docs/dialects.md; `sockbench learn` writes one). Our back-ends always speak `sockbench`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l max-body -d 'Its --max-body' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l duration -d 'How long to soak: `20s`, `10m`, `24h`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l warmup -d 'The first part left out of the trends (default: a quarter of the duration, between 2 s and 60 s)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l idle -d 'Idle connections held open on each concurrent target' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l seed -d 'Seed of the workload' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l out -d 'Directory for results.json, report.md and index.html' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l table -d 'Also put the slope table into this Markdown file, as its `soak` block (docs/robustness.md; other blocks are kept)' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l not-concurrent -d 'It serves one connection at a time'
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -l no-progress -d 'No progress bar'
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand soak" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l listen -d 'Where clients connect (port 0: any free port; the ready line says which)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l to -d 'The server every connection is forwarded to' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l slice -d 'Re-segment: write pieces of seeded random sizes, `N` or `LO-HI` bytes (e.g. `1-64`); a short tail waits up to --glue for more' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l glue -d 'How long a short tail waits to be glued to the next read' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l delay -d 'Wait before forwarding each burst (what one read brought): `5ms`, or jitter `0-5ms`' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l throttle -d 'Bytes per second per direction (suffixes K, M)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l reset-after -d 'Reset both sides of a connection once N bytes went through it' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l seed -d 'Seed of the cuts and the jitter' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l for -d 'Stop after this long (default: run until interrupted)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand proxy" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -l server -d 'Your server, with `{tcp_port}` where it takes its port, e.g. \'python3 server.py {tcp_port}\'. Without it, sockbench listens silently in its place (it records what the client sends and never answers)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -l client -d 'Your client, with `{tcp_port}` and `{file}` (a file learn makes, or --file), e.g. \'python3 client.py {tcp_port} {file}\'' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -l stdin -d 'The client\'s standard input, for an interactive client (`{file}` and `{tcp_port}` are substituted in it)' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -l file -d 'The file given to the client as `{file}` (default: 60 lines of text)' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -l name -d 'The name of the dialect written' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -l out -d 'Where to write it' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -l timeout -d 'How long the client may run' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand learn" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand merge" -l histogram -d 'Also write the merged latency distribution to FILE' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand merge" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand merge" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand merge" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand merge" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand merge" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand report" -l in -d 'A results.json written by bench, conform or soak' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand report" -l out -d 'Output directory (default: the input\'s directory)' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand report" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand report" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand report" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand report" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l baseline -d 'The baseline: a results.json, or a directory with results.json and/or conform/results.json' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l current -d 'The current run, likewise. Given twice or more (confirming runs), a timing regression must appear in every one; conformance and counters are judged on the first. A confirming run may hold only some scenarios (those that regressed); the rest are judged on the first' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l known-failing -d 'Cases expected to fail now (`ID` or `TARGET:ID`); one that passes fails the gate' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l tolerance -d 'Relative drop of a median ratio that can be a regression' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l counter-tolerance -d 'Relative rise of a counter (syscalls, allocations per frame) that is a regression' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l summary -d 'Write the Markdown summary (for a pull-request comment) here' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l ab -d 'Instead: build this revision in a worktree and compare it with this build, interleaved, on paired ratios (the pull-request mode). Without REV, the revision the baseline was measured at' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l rounds -d 'Rounds of the A/B comparison (at least 5)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l no-timing -d 'State timings without gating them: gate conformance and counters only (CI on shared machines, where `--ab` gates the timings)'
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -l confirm -d 'On a timing regression, re-measure just the regressed configurations (same build, same parameters, into CURRENT/confirm) and let only what regresses again stand'
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand gate" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand baseline" -l runs -d 'Quick bench runs pooled into the baseline' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand baseline" -l out -d 'Where it goes' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand baseline" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand baseline" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand baseline" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand baseline" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand baseline" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand completions" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand completions" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand completions" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand completions" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand man" -l dir -d 'Write sockbench.1 and sockbench-SUBCOMMAND.1 here instead' -r -F
complete -c sockbench -n "__fish_sockbench_using_subcommand man" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand man" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand man" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand man" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand fuzz-corpus" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand fuzz-corpus" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand fuzz-corpus" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand fuzz-corpus" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand fuzz-corpus" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand udp-probe" -l to -d 'The echo server' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand udp-probe" -l size -d 'Datagram size' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand udp-probe" -l rate -d 'Datagrams per second' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand udp-probe" -l ms -d 'How long to send, in milliseconds' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand udp-probe" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand udp-probe" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand udp-probe" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand udp-probe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand udp-probe" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand ceiling" -l strategy -d '`loop` (one event loop), `threads` (a thread per connection) or `sequential` (one connection at a time)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand ceiling" -l align -d 'Write back only whole multiples of this many bytes (0: any)' -r
complete -c sockbench -n "__fish_sockbench_using_subcommand ceiling" -l lang -d 'The language of findings, summaries and reports (default: from LANG; zh_CN and zh_SG give Simplified Chinese)' -r -f -a "en\t'English'
zh-CN\t'Simplified Chinese'"
complete -c sockbench -n "__fish_sockbench_using_subcommand ceiling" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace)'
complete -c sockbench -n "__fish_sockbench_using_subcommand ceiling" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c sockbench -n "__fish_sockbench_using_subcommand ceiling" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sockbench -n "__fish_sockbench_using_subcommand ceiling" -s V -l version -d 'Print version'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "serve" -d 'Run one back-end as a server (the process contract of docs/protocol.md)'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "conform" -d 'Check servers against the protocol: our back-ends or anybody\'s'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "bench" -d 'Measure the back-ends on identical scenarios; write reports/latest/'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "explore" -d 'Model-based testing of any server: generated programs, every reply predicted by the protocol\'s model, a divergence shrunk to a repro'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "replay" -d 'Run an explore repro.json again: exit 1 while it still diverges'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "load" -d 'Open-loop load against any address: a schedule of intended send times, latency measured from them (like wrk2 or `iperf3 -c`)'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "soak" -d 'A mixed workload for a long time, the server\'s memory, file descriptors and threads sampled every second: exit 1 on a leak or a wrong reply'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "proxy" -d 'A TCP proxy that re-segments, delays, throttles or resets the streams it carries (seeded), for anybody\'s client and server'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "learn" -d 'Infer the dialect of your own server and client from what crosses the wire between them; writes dialect.toml for conform --dialect'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "merge" -d 'Merge `load --json` results from several hosts into one'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "report" -d 'Regenerate report.md and index.html from a results.json'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "gate" -d 'Compare a run with a baseline; exit 1 on a regression'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "baseline" -d 'Refresh reports/baseline/: pooled quick bench runs and a conformance run'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "completions" -d 'Print a shell completion script: `sockbench completions bash > ~/.local/share/bash-completion/completions/sockbench`'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "man" -d 'Print the man page (`sockbench man | man -l -`), or write one page per subcommand into a directory'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "fuzz-corpus" -d 'Write the golden vectors\' input streams as a fuzzing seed corpus'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "udp-probe" -d 'One sequenced UDP probe, printed as JSON (used by the netem mode)'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "ceiling" -d 'The bench\'s ceilings as a process of their own: an unframed TCP echo and a raw UDP echo, announced with a ready line like `serve`'
complete -c sockbench -n "__fish_sockbench_using_subcommand help; and not __fish_seen_subcommand_from serve conform bench explore replay load soak proxy learn merge report gate baseline completions man fuzz-corpus udp-probe ceiling help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
