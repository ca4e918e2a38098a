"""Entry point of ``python -m tools.simulator``."""

from tools.simulator.cli import main

raise SystemExit(main())
