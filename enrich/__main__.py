"""The ``enrich`` command's entry point: stop signals are handled before anything heavy is imported."""

from enrich import interrupts

interrupts.install()  # the first instruction of `enrich` on: a Ctrl-C while torch loads is neither lost nor a traceback


def entry() -> None:
    import sys

    try:
        from enrich.cli import main
    except KeyboardInterrupt:  # a second signal while the CLI loads: the handler has said so
        sys.exit(interrupts.STOP.exit_code)
    sys.exit(main())


if __name__ == "__main__":
    entry()
