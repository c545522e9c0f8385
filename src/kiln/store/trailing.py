"""Capturing a tree while a tarball is being extracted into it, instead of after.

A rootfs tarball written in capture order (each directory before its entries, names sorted within a
directory: what ``tar --sort=name`` and mmdebstrap write) lists its entries in the order the layer's
tar stream needs them. Then the capture can trail the extraction: each entry is written to the layer
soon after the extractor is done with it, compressing while the next files are being created. The
bytes are those a capture of the finished tree gives: entries are read from the disk the same way,
and a directory's header takes the mtime the extractor will set when it finishes. As soon as the
tarball turns out not to be in that order (or an entry's parent was not in it), the trailing capture
gives up and the tree is captured afterwards, as any directory.

The capture runs in the extracting thread, a batch of entries at a time: a second Python thread per
entry would gain nothing (the two share one interpreter lock, and handing it over at every system
call of either made an import of a million entries twice as slow). What does run beside the
extraction is the work on the layer's bytes, a block at a time (``kiln.store.layer_stream``):
hashing, compressing and writing them, which hold no interpreter lock. A hard link is captured as a link to
the first name of its file, which the tarball names (the file itself had one link when it was
captured, so the capture did not note its inode).

A regular file's contents are not read back from the disk: the extractor hands over the bytes it
just wrote to the file (views of its read buffer), and the capture writes those (a file larger than
``KEEP_DATA``, or one whose size on disk is not theirs, is read back). The read buffers those views
keep alive are counted, and a batch is captured once they pass ``HELD_MAX`` (small files far apart
in the stream each keep a buffer of their own).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from kiln.store.blobs import BlobStore, BlobWriter
from kiln.store.fidelity import CaptureRecord
from kiln.store.layers import COMPRESSIONS, LayerInfo, TreeWriter, open_layer_stream, source_date_epoch

BATCH = 512  # entries captured at a time (their inodes are then still in the CPU's caches)
HELD_MAX = 16 << 20  # bytes of read buffers a batch keeps alive at most

# (relative path, a directory's final mtime, the first name of a hard link's file, a file's bytes)
Item = tuple[str, int | None, str | None, list[memoryview] | None]


class _HandedTreeWriter(TreeWriter):
    """A :class:`TreeWriter` writing a regular file's contents from ``handed`` (the bytes the
    extractor wrote to it) when their length is the file's size, instead of reading the file."""

    handed: list[memoryview] | None = None

    def _data(self, path: str, st: os.stat_result) -> None:
        handed, self.handed = self.handed, None
        if handed is None or sum(map(len, handed)) != st.st_size:
            super()._data(path, st)
            return
        for piece in handed:
            self.sink.write(piece)  # type: ignore[arg-type]
        self._pad(st.st_size)


class TrailingCapture:
    """Feed it every extracted entry (:meth:`feed`), then :meth:`result` after the extractor finished."""

    def __init__(self, root: Path, blobs: BlobStore, *, compression: str = "zstd") -> None:
        self.root = str(root)
        self.media_type = COMPRESSIONS[compression]
        self.record = CaptureRecord()
        self._writer: BlobWriter = blobs.writer()
        self._stream = open_layer_stream(self._writer, compression)  # type: ignore[arg-type]
        self._tree = _HandedTreeWriter(self._stream, overlay=False, clamp=source_date_epoch(), record=self.record)
        self._batch: list[Item] = []
        self._held = 0  # bytes of the read buffers the batch's file contents are views of
        self._buffer: object = None  # the last of those buffers (the stream's come in order)
        self._last: list[str] = []
        self._dirs: set[str] = {""}
        self._link_groups: dict[str, str] = {}  # a hard-linked name -> the first name of its file
        self.given_up = False
        self._error: BaseException | None = None

    def feed(self, rel: str, member: tarfile.TarInfo, data: list[memoryview] | None = None) -> None:
        """``rel`` (a cleaned path) is extracted, with its metadata, and nothing will change it again
        (but a directory's mtime, which the extractor sets to ``member.mtime`` at the end); ``data``,
        when given, is what the extractor wrote to it."""
        if self.given_up:
            return
        parts = rel.split("/")
        parent = rel.rpartition("/")[0]
        final_mtime = None
        if member.isdir():
            if not float(member.mtime).is_integer() or member.mtime < 0:
                self.given_up = True  # a fractional mtime: only the finished tree tells what it became
                return
            final_mtime = int(member.mtime)
            self._dirs.add(rel)
        if parts <= self._last or parent not in self._dirs:
            self.given_up = True
            return
        self._last = parts
        first = None
        if member.islnk():  # the extractor checked the target: a regular file of this tarball, before it
            target = "/".join(p for p in member.linkname.split("/") if p not in ("", "."))
            first = self._link_groups.get(target, target)
            self._link_groups[rel] = first
        self._batch.append((rel, final_mtime, first, data))
        for piece in data or ():
            if piece.obj is not self._buffer:
                self._buffer = piece.obj
                self._held += len(piece.obj)  # type: ignore[arg-type]
        if len(self._batch) >= BATCH or self._held >= HELD_MAX:
            self._capture()

    def _capture(self) -> None:
        batch, self._batch, self._held, self._buffer = self._batch, [], 0, None
        if self._error is not None or self.given_up:
            return
        root, tree = self.root, self._tree
        for rel, final_mtime, first, data in batch:
            path = f"{root}/{rel}"
            try:
                st = os.lstat(path)
                if first is not None:
                    tree.links.setdefault((st.st_dev, st.st_ino), first)
                tree.handed = data
                tree.entry(rel, path, st, final_mtime=final_mtime)
            except Exception as error:  # raised by result(): the extraction goes on, and may refuse first
                self._error = error
                return
            finally:
                tree.handed = None

    def result(self) -> LayerInfo | None:
        """The layer, committed as a blob; None when the capture gave up (capture the tree instead)."""
        self._capture()
        if self._error is not None:
            self.abort()
            raise self._error
        if self.given_up:
            self.abort()
            return None
        try:
            self._tree.finish()
            self._stream.close()
        except BaseException:
            self.abort()
            raise
        digest = self._writer.commit()
        return LayerInfo(digest, "sha256:" + self._stream.hash.hexdigest(), self._writer.size, self.media_type)

    def abort(self) -> None:
        self._batch, self._held, self._buffer = [], 0, None
        self._stream.abort()  # its error, if any, is not the one to tell
        self._writer.abort()
