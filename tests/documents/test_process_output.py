"""The one output pump: lines to the sink as they arrive, text kept (bounded on request)."""

from __future__ import annotations

import subprocess
import sys
import time

from kiln.documents.process_output import OutputCapture, pump


def test_lines_cross_chunks_and_multibyte_characters() -> None:
    lines: list[str] = []
    capture = OutputCapture(lines.append)
    data = "héllo\nwörld\nlast".encode()
    for index in range(len(data)):  # one byte at a time: characters and lines split anywhere
        capture.feed(data[index : index + 1])
    capture.feed(b"", final=True)
    assert "\n".join(lines).split("\n") == ["héllo", "wörld", "last"]
    assert capture.text() == "héllo\nwörld\nlast"


def test_line_endings_kept_when_asked() -> None:
    lines: list[str] = []
    capture = OutputCapture(lines.append, line_endings=True)
    capture.feed(b"a\nb\n")
    capture.feed(b"c\nd")
    capture.feed(b"", final=True)
    assert lines == ["a\nb\n", "c\n", "d"]  # the lines one read completed, in one block


def test_a_block_holds_every_line_a_read_completed() -> None:
    blocks: list[str] = []
    capture = OutputCapture(blocks.append)
    capture.feed(b"one\ntw")
    capture.feed(b"o\nthree\nfo")
    capture.feed(b"", final=True)
    assert blocks == ["one", "two\nthree", "fo"]


def test_keep_holds_only_the_last_characters() -> None:
    capture = OutputCapture(None, keep=10)
    for _ in range(1000):
        capture.feed(b"0123456789abcdef")
    capture.feed(b"", final=True)
    assert capture.dropped == 16 * 1000 - 10
    assert capture.text() == f"[kiln: the first {capture.dropped} characters of this output are not kept]\n6789abcdef"


def test_a_stream_without_newlines_is_handed_on_in_bounded_pieces() -> None:
    from kiln.documents.process_output import LINE_LIMIT

    pieces: list[str] = []
    capture = OutputCapture(pieces.append, keep=None)
    for _ in range(100):
        capture.feed(b"x" * 10_000)
    capture.feed(b"", final=True)
    assert "".join(pieces) == "x" * 1_000_000
    assert max(len(piece) for piece in pieces) == LINE_LIMIT


def test_pump_reads_both_pipes_and_kills_at_the_deadline() -> None:
    script = "import sys, time; print('out'); print('err', file=sys.stderr); sys.stdout.flush(); time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    out, err = OutputCapture(None), OutputCapture(None)
    assert process.stdout is not None and process.stderr is not None
    timed_out = pump(process, {process.stdout.fileno(): out, process.stderr.fileno(): err},
                     deadline=time.monotonic() + 2, kill=process.kill, grace=0.2)
    process.wait()
    process.stdout.close()
    process.stderr.close()
    assert timed_out
    assert (out.text(), err.text()) == ("out\n", "err\n")
