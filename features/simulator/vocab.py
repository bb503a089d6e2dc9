"""Strings <-> integer codes for closed vocabularies, through pyarrow (fast on millions of rows).

The simulator keeps ids, stages, channels and messages as integer codes while it runs, and the
oracle turns the strings of any state or action frame back into codes with these two helpers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: pandas' ``str`` dtype (arrow-backed, NaN for missing): what the loaders' schemas accept.
STRING_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)


def to_str_series(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """An arrow string array as a pandas ``str`` column (missing values are NaN)."""
    return pd.Series(values.to_pandas(types_mapper={pa.string(): STRING_DTYPE}.get),
                     dtype=STRING_DTYPE)


def lookup(vocabulary: Sequence[str | None], codes: np.ndarray) -> pd.Series:
    """Strings of integer codes into ``vocabulary``; code -1 becomes missing."""
    codes = np.asarray(codes)
    indices = pa.array(np.maximum(codes, 0).astype(np.int32), mask=codes < 0)
    return to_str_series(pa.array(list(vocabulary), type=pa.string()).take(indices))


def encode(
    values: pd.Series | np.ndarray | Sequence[object], vocabulary: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(codes, missing): index of each value in ``vocabulary``; -1 if missing or unknown.

    ``missing`` marks empty cells (None/NaN), so ``(codes < 0) & ~missing`` are unknown values.
    """
    array = pa.array(values if isinstance(values, pd.Series) else np.asarray(values, dtype=object),
                     from_pandas=True)
    if array.type != pa.string():
        array = array.cast(pa.string())
    missing = array.is_null().to_numpy(zero_copy_only=False)
    found = pc.index_in(array, value_set=pa.array(list(vocabulary), type=pa.string()))
    codes = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, np.asarray(missing, dtype=bool)
