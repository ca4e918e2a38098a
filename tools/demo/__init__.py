"""``python -m tools.demo``: the whole pipeline fed by a simulated academy, with a live display.

:mod:`tools.demo.pipeline` starts and stops the three services as subprocesses (also used by the
end-to-end benchmarks); :mod:`tools.demo.display` renders the terminal view;
:mod:`tools.demo.cli` is the command.
"""
