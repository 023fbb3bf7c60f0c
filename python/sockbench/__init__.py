"""sockbench: a conformance and benchmark harness for length-prefixed socket
programs, shipped as its Rust binary. Run it as ``sockbench`` or
``python -m sockbench``; :func:`find_sockbench_bin` says where it is."""

import os
import sys
import sysconfig

__all__ = ["find_sockbench_bin"]


def find_sockbench_bin() -> str:
    """The path of the installed ``sockbench`` executable.

    pip puts a wheel's scripts in the scheme's scripts directory: the venv's
    ``bin``, the interpreter's, or the user scheme's for ``pip install --user``.
    """
    exe = "sockbench" + (sysconfig.get_config_var("EXE") or "")
    candidates = [os.path.join(sysconfig.get_path("scripts"), exe)]
    if sys.version_info >= (3, 10):
        user = sysconfig.get_preferred_scheme("user")
    elif os.name == "nt":
        user = "nt_user"
    else:
        user = "posix_user"
    candidates.append(os.path.join(sysconfig.get_path("scripts", scheme=user), exe))
    # The package's own directory's sibling ``bin``: an install whose scheme
    # paths were relocated (``pip install --target``, some distro layouts).
    here = os.path.dirname(os.path.abspath(__file__))
    candidates.append(os.path.join(here, os.pardir, os.pardir, os.pardir, os.pardir, "bin", exe))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.normpath(path)
    raise FileNotFoundError(
        "the sockbench executable is not installed beside this package; looked in: "
        + ", ".join(os.path.normpath(p) for p in candidates)
    )
