"""Create ``.local/pybkt-venv``: pyBKT 1.4.3, the mastery-accuracy benchmark's reference.

    .venv/bin/python bench/pybkt_venv.py [--venv .local/pybkt-venv]     (or: make pybkt-venv)

pyBKT's published wheel is pure Python (very slow) and breaks with numpy 2, so it is built from
its source distribution (the C++ extension) without build isolation, against numpy < 2 and with
scikit-learn < 1.6 (newer versions reject the way pyBKT calls its metrics); it imports
``requests`` without declaring it. Never the project's
``.venv``. ``bench/run_all.py`` (``make bench``) creates it before the mastery benchmark and
passes its interpreter as ``--pybkt-python``; a failure there is reported, not hidden.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYBKT_VENV = ROOT / ".local" / "pybkt-venv"
PINS = ("numpy<2", "pandas<2.2", "scikit-learn<1.6", "requests", "setuptools", "wheel")
PYBKT = "pyBKT==1.4.3"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure(venv: Path = PYBKT_VENV) -> Path:
    """The venv's interpreter, the venv made first if pyBKT does not import there."""
    py = python_of(venv)
    probe = [str(py), "-c", "import pyBKT.models"]
    if (
        py.exists()
        and subprocess.run(probe, check=False, stderr=subprocess.DEVNULL).returncode == 0
    ):
        return py
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *PINS], check=True)
    subprocess.run(
        [*pip, "--no-build-isolation", "--no-binary", "pyBKT", "--no-deps", PYBKT], check=True
    )
    subprocess.run(probe, check=True)
    return py


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--venv", type=Path, default=PYBKT_VENV)
    args = ap.parse_args()
    print(ensure(args.venv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
