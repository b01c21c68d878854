"""Writing one large object to S3 as parts uploaded side by side, as boto3's transfer does.

s3fs' buffered file uploads a large object one part at a time; here the chunks are hashed
on the calling thread while up to ``PARALLEL`` parts are in flight on s3fs' event loop. The
upload is completed with ``If-None-Match: *`` only after the check passed (so an object that
appeared meanwhile is kept), and aborted on any failure: no object appears unless whole and
checked. Each request is retried after a transient failure (``retrying``: the source's
policy); a part is resent from memory, so the source is never read twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from typing import Any

Retrying = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]

PART = 8 << 20  # boto3's default part size; S3 allows 10,000 parts, so it grows (see _size)
PARALLEL = 10  # boto3's transfer default (max_concurrency)


def _size(number: int) -> int:
    """Part ``number``'s size: 8 MiB for the first thousand, doubled every thousand after."""
    return PART << ((number - 1) // 1000)


def _take(held: list[bytes], size: int) -> bytes:
    """The first ``size`` bytes of ``held``, removed from it (copied only when they are not
    one whole chunk: the 8 MiB blocks a push reads are sent as they were read)."""
    if len(held[0]) == size:
        return held.pop(0)
    body = b"".join(held)
    held[:] = [body[size:]] if len(body) > size else []
    return body[:size]


class PartUpload:
    """One multipart upload of ``bucket/key`` through an s3fs filesystem ``fs``."""

    def __init__(self, fs: Any, bucket: str, key: str, retrying: Retrying | None = None) -> None:
        self.fs, self.bucket, self.key = fs, bucket, key
        self.retrying = retrying
        self.upload_id: str | None = None
        self.pending: list[tuple[int, Future[Any]]] = []
        self.done: list[dict[str, Any]] = []

    def _call(self, method: str, **kwargs: Any) -> Future[Any]:
        def once() -> Awaitable[Any]:
            return self.fs._call_s3(method, Bucket=self.bucket, Key=self.key, **kwargs)  # type: ignore[no-any-return]

        coro = self.retrying(once) if self.retrying is not None else once()
        return asyncio.run_coroutine_threadsafe(coro, self.fs.loop)  # type: ignore[arg-type]

    def _send(self, number: int, body: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self._call("create_multipart_upload").result()["UploadId"]
        if len(self.pending) >= PARALLEL:
            self._settle_one()
        part = self._call("upload_part", UploadId=self.upload_id, PartNumber=number, Body=body)
        self.pending.append((number, part))

    def _settle_one(self) -> None:
        number, part = self.pending.pop(0)
        self.done.append({"PartNumber": number, "ETag": part.result()["ETag"]})

    def write(self, chunks: Iterable[bytes], check: Callable[[], None]) -> None:
        """Upload ``chunks``; complete once ``check()`` passed, else abort."""
        try:
            self._write(chunks, check)
        except BaseException:
            self.abort()
            raise

    def _write(self, chunks: Iterable[bytes], check: Callable[[], None]) -> None:
        held: list[bytes] = []  # chunks not sent yet, as they came: a chunk of a part's size is sent as it is
        count, number = 0, 1
        for chunk in chunks:
            held.append(chunk)
            count += len(chunk)
            while count > _size(number):  # the last part is never empty
                part = _take(held, _size(number))
                count -= len(part)
                self._send(number, part)
                number += 1
        check()
        body = held[0] if len(held) == 1 else b"".join(held)
        if self.upload_id is None:  # one part or less: a single conditional put
            self._call("put_object", Body=body, IfNoneMatch="*").result()
            return
        self._send(number, body)
        while self.pending:
            self._settle_one()
        parts = {"Parts": sorted(self.done, key=lambda p: p["PartNumber"])}
        try:
            self._call(
                "complete_multipart_upload", UploadId=self.upload_id, MultipartUpload=parts, IfNoneMatch="*"
            ).result()
        except Exception:
            # A completion whose answer was lost is retried, and the retry finds no such upload:
            # an object under the name is whole and checked (only checked uploads complete).
            if not self._exists():
                raise
            self.abort(quiet=True)  # ours, if another push's completed first
        self.upload_id = None

    def _exists(self) -> bool:
        try:
            self._call("head_object").result()
        except Exception:
            return False
        return True

    def abort(self, *, quiet: bool = False) -> None:
        for _, part in self.pending:
            part.cancel()
        if self.upload_id is not None:
            upload_id, self.upload_id = self.upload_id, None
            try:
                self._call("abort_multipart_upload", UploadId=upload_id).result()
            except Exception:
                if not quiet:
                    raise
