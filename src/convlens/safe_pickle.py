"""Read pickled data files without letting them run code.

Some of the chapter's data sets ship as pickles: Planetoid's raw files (``ind.cora.x`` ...) and
CIFAR-10's ``cifar-10-batches-py``. ``pickle.load`` on such a file runs whatever callable the
file names, so a file planted in a data folder could run code. :func:`safe_load` admits only the
plain containers and the numpy / scipy.sparse types those files really hold; anything else ends
in a :class:`~convlens.errors.DataError` naming the file and the refused global.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO

from .errors import DataError

#: (module, name) pairs a data pickle may reference. Old scipy/numpy module paths are listed too:
#: Planetoid's files were written by Python 2 with scipy's pre-1.8 layout.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [("builtins", n) for n in ("list", "dict", "set", "frozenset", "tuple", "int", "float", "complex",
                                "bool", "bytes", "bytearray", "str", "object", "slice")]
    + [("__builtin__", n) for n in ("list", "dict", "set", "tuple", "int", "float", "object")]
    + [("collections", "defaultdict"), ("collections", "OrderedDict"),
       ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("_codecs", "encode")]
    + [(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
       for n in ("_reconstruct", "scalar")]
    + [("numpy", "ndarray"), ("numpy", "dtype")]
    + [(m, n) for n in ("csr_matrix", "csc_matrix", "coo_matrix")
       for m in ("scipy.sparse", "scipy.sparse.csr", "scipy.sparse._csr", "scipy.sparse.csc",
                 "scipy.sparse._csc", "scipy.sparse.coo", "scipy.sparse._coo")]
)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, source: str, **kwargs: Any):
        super().__init__(file, **kwargs)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise DataError(
                f"{self._source}: refused to unpickle {module}.{name} (a data file may hold only arrays and "
                "plain containers); replace the file with an original copy"
            )
        return super().find_class(module, name)


def safe_load(path: str | os.PathLike, encoding: str = "latin1") -> Any:
    """Unpickle ``path`` admitting only :data:`ALLOWED_GLOBALS`.

    ``encoding="latin1"`` reads Python 2 pickles (Planetoid, CIFAR-10) as their authors wrote them.
    Raises :class:`DataError` for a refused global or a file that is not a pickle.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _RestrictedUnpickler(f, str(path), encoding=encoding).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise DataError(f"{path}: not a readable data pickle ({exc}); replace it with an original copy") from exc
