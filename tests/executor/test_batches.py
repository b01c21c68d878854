"""How work is cut into tasks, and errors carried back as themselves (no cluster needed)."""

from __future__ import annotations

import errno
import pickle

import pytest

from vxds.errors import SourceError
from vxds.executor import ExecutorError, check_url, for_url
from vxds.executor.batches import Each, Raised, cut, run_batch
from vxds.executor.local import LOCAL
from vxds.hashing import FileChanged
from vxds.sources.objectstore.failures import TRANSIENT, StoreFailure

MiB = 1 << 20


def test_small_items_share_tasks_and_a_large_one_has_its_own() -> None:
    sizes = [10, 10, 100 * MiB, 10, 10, 10]
    assert cut(sizes, max_items=2) == [[0, 1], [2], [3, 4], [5]]
    assert cut(sizes) == [[0, 1], [2], [3, 4, 5]]
    assert cut([300 * MiB // 5] * 10, max_bytes=200 * MiB) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert cut([]) == []


def roundtrip(exc: BaseException) -> BaseException:
    result = pickle.loads(pickle.dumps(run_batch(Each(_raise), [exc])))
    assert isinstance(result, Raised)
    return result.rebuild()


def _raise(exc: BaseException) -> None:
    raise exc


def test_errors_come_back_as_the_same_type_with_the_same_message() -> None:
    changed = roundtrip(FileChanged("/data/a.nii.gz"))
    assert type(changed) is FileChanged
    assert str(changed) == str(FileChanged("/data/a.nii.gz"))
    assert changed.path == "/data/a.nii.gz"  # type: ignore[attr-defined]
    failure = roundtrip(StoreFailure("source 's3://b/p': cannot read x: slow", kind=TRANSIENT, hint="wait"))
    assert isinstance(failure, StoreFailure)
    assert failure.kind == TRANSIENT
    assert str(failure) == "source 's3://b/p': cannot read x: slow\nhint: wait"
    missing = roundtrip(FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/b"))
    assert type(missing) is FileNotFoundError
    assert (missing.errno, missing.strerror, missing.filename) == (
        errno.ENOENT,
        "No such file or directory",
        "/data/b",
    )  # type: ignore[attr-defined]
    assert isinstance(roundtrip(SourceError("plain")), SourceError)


def test_the_local_executor_keeps_input_order_and_raises_the_first_error() -> None:
    assert LOCAL.map(lambda n: n * 2, [3, 1, 2], [0, 100 * MiB, 0]) == [6, 2, 4]
    assert LOCAL.map_batches(lambda batch: [n + 1 for n in batch], [1, 2], [0, 0]) == [2, 3]
    with pytest.raises(ValueError, match="two"):
        LOCAL.map(lambda n: _raise(ValueError(n)) if n == "two" else n, ["one", "two"], [0, 0])


def test_an_executor_url_is_local_or_a_scheduler() -> None:
    assert for_url(None) is LOCAL
    assert for_url("local") is LOCAL
    assert check_url("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    with pytest.raises(
        ExecutorError, match=r"expected 'local' or a Dask scheduler address \(tcp://HOST:PORT\)"
    ):
        for_url("http://scheduler:8786")
    assert for_url("tcp://127.0.0.1:1").remote  # nothing connects before work is sent
