"""Test helpers: the EWS emulator, in process or as a subprocess, for your own tests.

Both kinds serve the demo tenant ``contoso.test``: users alice, bob, carol and dave, the
``sync-admin`` account with impersonation rights over every mailbox and owner of the public
folders, password ``exchange-sync``, public folders ``Company Contacts`` (with ``contacts``
generated contacts) and ``Company Calendar``, distribution group ``sales@contoso.test``.

- :class:`Emulator` runs in this process (on the package's Rust runtime); cheapest to start.
- :class:`EmulatorProcess` runs the ``ews-emulator`` binary as a subprocess (found through the
  ``binary`` argument, the ``EWS_EMULATOR_BIN`` environment variable or ``PATH``), e.g. to test
  against a server that outlives a crash of the code under test.

Both are context managers and offer ``url``, ``admin``, ``password``, ``users`` and
``connection(id)`` (a :class:`exchange_sync.Connection` as the admin account).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import signal
from types import TracebackType
from typing import List, Optional, Sequence, Type

from . import Connection

try:
    from ._native import Emulator
except ImportError:  # a build without the `testing` feature ships no in-process emulator

    class Emulator:  # type: ignore[no-redef]
        """Not in this build: the in-process emulator comes with the `testing` feature."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError(
                "this build of exchange_sync has no in-process emulator (build it with the "
                "`testing` feature, as the test command does); EmulatorProcess runs the binary instead"
            )


__all__ = ["Emulator", "EmulatorProcess", "EmulatorNotFound"]


class EmulatorNotFound(RuntimeError):
    """The ``ews-emulator`` binary was not found (build it with ``cargo build -p ews-emulator``)."""


class EmulatorProcess:
    """The ``ews-emulator`` binary running as a subprocess on a free loopback port.

    ``contacts`` sets the number of generated contacts in ``Company Contacts``; ``extra_args``
    are passed on (see ``ews-emulator --help``: ``--latency-ms``, ``--busy-rate``,
    ``--server-version``, ...). Traces go to ``$EWS_TRACE_DIR`` when it is set.
    """

    def __init__(
        self,
        binary: Optional[str] = None,
        *,
        contacts: int = 25,
        users: Optional[Sequence[str]] = None,
        password: str = "exchange-sync",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        found = binary or os.environ.get("EWS_EMULATOR_BIN") or shutil.which("ews-emulator")
        if not found or not os.path.exists(found):
            raise EmulatorNotFound(
                "ews-emulator binary not found: pass binary=..., set EWS_EMULATOR_BIN or put it on PATH"
            )
        self.binary: str = found
        self.password: str = password
        self._users: List[str] = list(users) if users is not None else ["alice", "bob", "carol", "dave"]
        args = [
            found,
            "--listen",
            "127.0.0.1:0",
            "--contacts",
            str(contacts),
            "--users",
            ",".join(self._users),
            "--password",
            password,
            "--heartbeat-secs",
            "1",
            *extra_args,
        ]
        self._process: subprocess.Popen[str] = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.url: str = self._read_line("EWS endpoint: ", startup_timeout)
        self.autodiscover_url: str = self._read_line("Autodiscover: ", startup_timeout)

    def _read_line(self, prefix: str, timeout: float) -> str:
        assert self._process.stdout is not None
        # The emulator prints its endpoints first thing; a process that exits prints nothing.
        line = self._process.stdout.readline()
        if not line.startswith(prefix):
            self.stop(timeout)
            raise RuntimeError(f"ews-emulator did not start (printed {line!r})")
        return line[len(prefix):].strip()

    @property
    def admin(self) -> str:
        """The account with impersonation rights over every mailbox."""
        return "sync-admin@contoso.test"

    @property
    def users(self) -> List[str]:
        """The user mailboxes' addresses."""
        return [f"{u}@contoso.test" for u in self._users]

    @property
    def running(self) -> bool:
        """Whether the process is still running."""
        return self._process.poll() is None

    def connection(self, id: str = "exchange") -> Connection:
        """A connection to this emulator as the admin account (basic auth, impersonation)."""
        return Connection(id, self.url, username=self.admin, password=self.password)

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the process (Ctrl-C first, so it shuts down gracefully; killed after ``timeout``)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> "EmulatorProcess":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<EmulatorProcess {self.url}>"
