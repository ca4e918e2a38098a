"""Entry point of ``python -m tools.demo``."""

from tools.demo.cli import main

raise SystemExit(main())
