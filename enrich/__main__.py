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

        code = main()
    except KeyboardInterrupt:  # a second signal where no command handles it (the CLI loading, or just returned)
        code = interrupts.STOP.exit_code
    interrupts.ignore()  # the command is over: a late signal has nothing left to stop, and no traceback to print
    sys.exit(code)


if __name__ == "__main__":
    entry()
