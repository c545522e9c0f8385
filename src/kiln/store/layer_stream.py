"""A layer's tar stream on its way to a blob: hashed, compressed and written in a pipeline.

The walk fills fixed-size blocks (file contents are read straight into them: no copy between
stages). Each full block goes through three threads, in order: the first hashes it (the diff_id),
the second compresses it and gives the block back to the pool, the third writes the compressed
bytes to the target (a :class:`~kiln.store.blobs.BlobWriter` hashes them: the digest). hashlib,
zstandard and file writes hold no interpreter lock on large buffers, so the stages overlap each
other and the walk: the capture's wall time comes near its slowest stage instead of their sum.

Which thread does what, and when, changes nothing in the bytes: blocks are cut at fixed offsets of
the tar stream and every stage takes them in order (zstd's frame depends on its parameters and the
input, not on how the input is fed, nor on how many worker threads there are once there is one).
Memory is bounded: ``BLOCKS`` blocks in flight, and a bounded queue of compressed output.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

import zstandard

BLOCK_SIZE = 4 << 20
BLOCKS = 6  # blocks in flight at most: the walk waits for one beyond
OUTPUT_BACKLOG = 16  # compressed chunks waiting for the writer at most
ZSTD_WRITE_SIZE = 1 << 20  # compressed bytes handed on at a time (fewer hand-overs than zstd's 128 KiB)
_END = object()


class _Stage:
    """A thread applying ``work`` to each item put, in order, then ``then`` (also after a failure:
    the items keep flowing, so no producer ever waits on a failed stage). The first error is kept."""

    def __init__(self, name: str, work: Callable[[Any], Any], then: Callable[[Any], Any] | None = None,
                 *, finish: Callable[[], Any] | None = None, backlog: int = 0) -> None:
        self.work, self.then, self.finish = work, then, finish
        self.error: BaseException | None = None
        self.skip_finish = False
        self.items: queue.Queue[Any] = queue.Queue(backlog)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, item: Any) -> None:
        self.items.put(item)

    def _run(self) -> None:
        while (item := self.items.get()) is not _END:
            if self.error is None:
                try:
                    self.work(item)
                except BaseException as error:
                    self.error = error
            if self.then is not None:
                self.then(item)
        if self.finish is not None and self.error is None and not self.skip_finish:
            try:
                self.finish()
            except BaseException as error:
                self.error = error


class _Forward:
    """The compressor's target: each compressed chunk goes on to the writing stage."""

    def __init__(self, stage: _Stage) -> None:
        self.stage = stage

    def write(self, data: bytes) -> int:
        self.stage.put(data if isinstance(data, bytes) else bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class LayerStream:
    """The file-like sink a :class:`~kiln.store.layers.TreeWriter` writes a tar stream to.

    ``compress`` wraps a writable target into a compressing one (None: the tar is written as it is).
    Call :meth:`close` once the stream is complete (it raises what a stage met), or :meth:`abort`.
    ``hash`` is the uncompressed stream's sha256 once closed.
    """

    def __init__(self, target: BinaryIO, compress: Callable[[Any], BinaryIO] | None = None,
                 *, block_size: int | None = None, blocks: int | None = None) -> None:
        self.hash = hashlib.sha256()
        self.offset = 0
        self._size = block_size or BLOCK_SIZE
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._spare = blocks or BLOCKS  # blocks not allocated yet (a small layer needs one)
        if compress is None:  # the block itself is written, then given back
            self._write = _Stage("layer-write", lambda item: target.write(item[1]), self._recycle)
            self._compress: _Stage | None = None
            first_next = self._write.put
        else:
            self._write = _Stage("layer-write", target.write, backlog=OUTPUT_BACKLOG)
            compressed = compress(_Forward(self._write))
            self._compress = _Stage("layer-compress", lambda item: compressed.write(item[1]), self._recycle,
                                    finish=compressed.close)
            first_next = self._compress.put
        self._hash = _Stage("layer-hash", lambda item: self.hash.update(item[1]), first_next)
        self._stages = [stage for stage in (self._hash, self._compress, self._write) if stage is not None]
        self._closed = False
        self._block = self._take()
        self._view = memoryview(self._block)
        self._fill = 0

    def _take(self) -> bytearray:
        """A free block; a new one while fewer than ``BLOCKS`` exist, else the next one given back."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            if self._spare:
                self._spare -= 1
                return bytearray(self._size)
            return self._free.get()

    def _recycle(self, item: tuple[bytearray, memoryview]) -> None:
        item[1].release()
        self._free.put(item[0])

    def _failed(self) -> BaseException | None:
        return next((stage.error for stage in self._stages if stage.error is not None), None)

    def _push(self) -> None:
        """Hand the current block on and take a free one (raising what a stage met, if one failed)."""
        if self._fill:
            self._hash.put((self._block, self._view[: self._fill]))
            self._block = self._take()
            self._view.release()
            self._view = memoryview(self._block)
            self._fill = 0
        if (error := self._failed()) is not None:
            raise error

    def write(self, data: bytes) -> int:
        size = len(data)
        end = self._fill + size
        if end <= self._size:  # headers and padding, nearly always
            self._block[self._fill:end] = data
            self._fill = end
            if end == self._size:
                self._push()
        else:
            view, done = memoryview(data), 0
            while done < size:
                take = min(self._size - self._fill, size - done)
                self._block[self._fill:self._fill + take] = view[done:done + take]
                self._fill += take
                done += take
                if self._fill == self._size:
                    self._push()
        self.offset += size
        return size

    def write_from(self, fd: int, size: int) -> int:
        """Read up to ``size`` bytes of ``fd`` straight into the stream; the bytes read (fewer at EOF)."""
        done = 0
        while done < size:
            want = min(self._size - self._fill, size - done)
            got = os.readv(fd, [self._view[self._fill:self._fill + want]])
            if not got:
                break
            self._fill += got
            done += got
            if self._fill == self._size:
                self._push()
        self.offset += done
        return done

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        """Nothing to do before :meth:`close`: blocks are handed on as they fill."""

    def _end(self) -> None:
        self._closed = True
        for stage in self._stages:  # each stage drains its queue before the next is told to end
            stage.put(_END)
            stage.thread.join()
        self._view.release()

    def close(self) -> None:
        """Hand on the last block, wait for every stage (the compressor's frame ended), raise a failure."""
        if self._closed:
            return
        if self._fill:
            self._hash.put((self._block, self._view[: self._fill]))
            self._fill = 0
        self._end()
        if (error := self._failed()) is not None:
            raise error

    def abort(self) -> None:
        """Stop every stage without finishing the compressed stream (its target is not closed)."""
        if not self._closed:
            if self._compress is not None:
                self._compress.skip_finish = True
            self._end()


def zstd_writer(level: int, threads: int, target: Any) -> BinaryIO:
    compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
    return compressor.stream_writer(target, closefd=False, write_size=ZSTD_WRITE_SIZE)  # type: ignore[return-value]
