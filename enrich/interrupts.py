"""Stop signals (SIGINT, SIGTERM) from the first instruction of ``enrich`` on.

The first signal sets :data:`STOP` (no new clip starts; the clips in progress finish and are committed) and
says so on stderr; a second one says that it drops the clips in progress and raises ``KeyboardInterrupt``.
Installed by ``enrich.__main__.entry`` before anything heavy is imported, so a Ctrl-C while torch loads is
neither lost nor a traceback, and also where the shell started ``enrich`` with SIGINT ignored (a background job).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_OF_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number, as shells report it


class StopEvent(threading.Event):
    """Set by the first stop signal; ``signum`` says which; ``leaving`` once a second one said so."""

    signum: int = signal.SIGINT
    leaving: bool = False

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return EXIT_OF_SIGNAL[self.signum]


STOP = StopEvent()


def _handle(signum: int, _frame: object) -> None:
    name = signal.Signals(signum).name
    if STOP.is_set():
        if not STOP.leaving:
            STOP.leaving = True
            print(f"\nenrich: {name} again: dropping the clips in progress, leaving now", file=sys.stderr, flush=True)
        raise KeyboardInterrupt
    STOP.signum = signum
    STOP.set()
    print(f"\nenrich: {name}: finishing the clips in progress (again to drop them)", file=sys.stderr, flush=True)


def _unraisable(args: sys.UnraisableHookArgs) -> None:
    """The second signal's KeyboardInterrupt can land in a callback whose exceptions Python only prints (an
    import lock's weakref callback, a finaliser). Nothing is lost by dropping it: STOP is set, so the next
    stop check (before every clip and every costly step) ends the command with its one line."""
    if isinstance(args.exc_value, KeyboardInterrupt) and STOP.leaving:
        return
    _chained_unraisable[0](args)


_chained_unraisable = [sys.unraisablehook]  # the hook ours replaced: it gets everything else


def install() -> None:
    """Handle SIGINT and SIGTERM here from now on (main thread only; elsewhere a no-op). The unraisable hook is
    chained once and stays: with STOP clear (outside a command) it passes everything on."""
    if threading.current_thread() is threading.main_thread():
        for sig in EXIT_OF_SIGNAL:
            signal.signal(sig, _handle)
        if sys.unraisablehook is not _unraisable:
            _chained_unraisable[0] = sys.unraisablehook
            sys.unraisablehook = _unraisable


def ignore() -> None:
    """Ignore SIGINT and SIGTERM from now on (main thread only): for the moments after a command has ended."""
    if threading.current_thread() is threading.main_thread():
        for sig in EXIT_OF_SIGNAL:
            signal.signal(sig, signal.SIG_IGN)


@contextmanager
def handled() -> Iterator[StopEvent]:
    """The handlers for one command: installed if not yet, the previous ones (and a clear STOP) back after."""
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.getsignal(sig) for sig in EXIT_OF_SIGNAL} if main else {}
    install()
    try:
        yield STOP
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        STOP.clear()
        STOP.signum, STOP.leaving = signal.SIGINT, False
