"""The ``enrich`` command's entry point: stop signals are handled before anything heavy is imported."""

import sys

from enrich import interrupts

# A worker process started by multiprocessing's spawn re-runs the `enrich` console script, which imports this
# module again: the worker must keep the SIG_IGN the executor gave it (the parent decides on stop signals).
if "multiprocessing.spawn" not in sys.modules:
    interrupts.install()  # from the first instruction of `enrich` on: a Ctrl-C while torch loads is not lost


def entry() -> None:
    try:
        from enrich.cli import main
    except KeyboardInterrupt:  # a second signal while the CLI loads: the handler has said so
        sys.exit(interrupts.STOP.exit_code)
    sys.exit(main())


if __name__ == "__main__":
    entry()
