"""Reading a child process's stdout and stderr: the one pump every executor uses.

``pump`` reads both pipes without blocking until they close, kills the process group at the
deadline, and stops reading a short grace after the process exits (a daemon it started may hold the
pipes open forever). Each pipe feeds an ``OutputCapture``: text decoded incrementally as UTF-8
(invalid bytes replaced), complete lines handed to a sink as they arrive — all the lines a read
completed in one block, ``\n``-separated, so the cost per line is C's, not Python's — and the text kept for the
step's result — only its last ``keep`` characters (``OUTPUT_TAIL_CHARS`` by default, a marker saying
how much was left out), so a step that prints gigabytes costs bounded memory. A "line" longer than
``LINE_LIMIT`` characters is handed on in pieces. Work per byte is constant: a line is never re-split.
"""

from __future__ import annotations

import codecs
import os
import selectors
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping

from kiln.documents.executor import OutputSink

READ_SIZE = 65536
# What a step's ``outputs.stdout`` keeps: the last 1 Mi characters (kiln's bound; the full output is in
# the step's log, itself capped by the run log).
OUTPUT_TAIL_CHARS = 1024 * 1024
LINE_LIMIT = 64 * 1024


class OutputCapture:
    """One pipe's output: lines to ``sink`` (with their ``\\n`` when ``line_endings``), text kept."""

    def __init__(
        self, sink: OutputSink | None, *, line_endings: bool = False, keep: int | None = OUTPUT_TAIL_CHARS
    ) -> None:
        self.sink = sink
        self.line_endings = line_endings
        self.keep = keep
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.parts: deque[str] = deque()
        self.kept = 0
        self.dropped = 0  # characters left out of ``text()`` by ``keep``
        self.pending: list[str] = []  # the current line, not yet ended
        self.pending_length = 0

    def feed(self, data: bytes, final: bool = False) -> None:
        text = self.decoder.decode(data, final=final)
        if text:
            self._keep(text)
            if self.sink is not None:
                self._lines(text)
        if final and self.sink is not None and self.pending:
            self._flush_pending("")

    def _keep(self, text: str) -> None:
        self.parts.append(text)
        self.kept += len(text)
        if self.keep is None:
            return
        while self.kept > self.keep:
            excess = self.kept - self.keep
            first = self.parts[0]
            if len(first) <= excess:
                self.parts.popleft()
                self.kept -= len(first)
                self.dropped += len(first)
            else:
                self.parts[0] = first[excess:]
                self.kept -= excess
                self.dropped += excess

    def _flush_pending(self, end: str) -> None:
        assert self.sink is not None
        self.pending.append(end)
        self.sink("".join(self.pending))
        self.pending = []
        self.pending_length = 0

    def _lines(self, text: str) -> None:
        """Every complete line of ``text`` (with what was pending) in one block; the rest waits."""
        assert self.sink is not None
        cut = text.rfind("\n")
        if cut >= 0:
            block = text[:cut]
            if self.pending:
                block = "".join(self.pending) + block
                self.pending = []
                self.pending_length = 0
            self.sink(block + "\n" if self.line_endings else block)
            text = text[cut + 1 :]
        start = 0
        while start < len(text):
            piece = text[start : start + LINE_LIMIT - self.pending_length]
            self.pending.append(piece)
            self.pending_length += len(piece)
            start += len(piece)
            if self.pending_length >= LINE_LIMIT:
                self._flush_pending("")  # a line without end: hand it on in pieces

    def text(self) -> str:
        kept = "".join(self.parts)
        if self.dropped:
            return f"[kiln: the first {self.dropped} characters of this output are not kept]\n{kept}"
        return kept


def pump(
    process: subprocess.Popen[bytes],
    captures: Mapping[int, OutputCapture],
    *,
    deadline: float | None,
    kill: Callable[[], None],
    grace: float,
) -> bool:
    """Read the pipes (by file descriptor) into their captures; True if the deadline killed it.

    Every capture gets its final feed, also when reading stops early or is interrupted; closing the
    pipes is the caller's."""
    timed_out = False
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in captures:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map():
                now = time.monotonic()
                if deadline is not None and now >= deadline and not timed_out:
                    kill()
                    timed_out = True
                if exited_at is None and process.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at >= grace:
                    break  # background children hold the pipes; stop reading, leave them be
                waits = [0.2]
                if deadline is not None and not timed_out:
                    waits.append(deadline - now)
                if exited_at is not None:
                    waits.append(exited_at + grace - now)
                for key, _ in selector.select(max(0.0, min(waits))):
                    try:
                        chunk = os.read(key.fd, READ_SIZE)
                    except BlockingIOError:
                        continue
                    if chunk:
                        captures[key.fd].feed(chunk)
                    else:
                        selector.unregister(key.fd)
        finally:
            for capture in captures.values():
                capture.feed(b"", final=True)
    return timed_out
