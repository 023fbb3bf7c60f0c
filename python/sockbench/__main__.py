"""``python -m sockbench ARGS``: the same as ``sockbench ARGS``."""

import os
import sys

from sockbench import find_sockbench_bin


def main() -> None:
    try:
        exe = find_sockbench_bin()
    except FileNotFoundError as e:
        print(f"sockbench: {e}", file=sys.stderr)
        sys.exit(2)
    if sys.platform == "win32":
        import subprocess

        sys.exit(subprocess.run([exe, *sys.argv[1:]]).returncode)
    # Replace this process, so signals (Ctrl-C, SIGTERM) and the exit status
    # are the binary's own.
    os.execv(exe, [exe, *sys.argv[1:]])


if __name__ == "__main__":
    main()
