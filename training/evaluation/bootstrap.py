"""Vectorised nonparametric bootstrap of sums and ratios of sums over rows.

Every estimator of ``training.evaluation.ope`` is a ratio of two column sums over the logged rows
(a plain mean has a denominator of ones). Resampling rows with replacement is then the same as
weighting each row by how often it was drawn, so one resample of all estimators at once is a
count vector times the per-row matrix. Counts are drawn in chunks of resamples and multiplied in
one BLAS call per chunk: 1,000 resamples of 100,000 rows take a couple of seconds, and all
estimators (and all policies) share the same resamples, which makes differences between them
paired.
"""

from __future__ import annotations

import numpy as np

#: Rows × resamples held in memory per chunk (as float64 counts: 8 bytes each).
_CHUNK_CELLS = 2_000_000
#: From this many distinct columns on, the statistics-major product is the faster one.
_WIDE_STATISTICS = 16


def resample_counts(n_rows: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(n_resamples, n_rows)`` matrix of how often each row was drawn in each resample of
    ``n_rows`` draws with replacement (each row sums to ``n_rows``)."""
    draws = rng.integers(0, n_rows, size=(n_resamples, n_rows), dtype=np.int64)
    draws += (np.arange(n_resamples, dtype=np.int64) * n_rows)[:, None]
    flat = np.bincount(draws.ravel(), minlength=n_resamples * n_rows)
    return flat.reshape(n_resamples, n_rows).astype(np.float64)


def bootstrap_ratios(
    numerators: np.ndarray,
    denominators: np.ndarray,
    n_resamples: int,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Bootstrap distribution of ``sum(numerators[:, j]) / sum(denominators[:, j])``.

    ``numerators`` and ``denominators`` are ``(n_rows, n_statistics)``; the result is
    ``(n_resamples, n_statistics)``. A resample whose denominator sums to zero gives ``nan``
    (possible for self-normalised estimators when no drawn row has weight).
    """
    numerators = np.asarray(numerators, dtype=np.float64)
    denominators = np.asarray(denominators, dtype=np.float64)
    if numerators.ndim != 2 or numerators.shape != denominators.shape:
        raise ValueError(
            "numerators and denominators must be 2-D arrays of the same shape, got "
            f"{numerators.shape} and {denominators.shape}"
        )
    n_rows, n_stats = numerators.shape
    if n_rows == 0:
        raise ValueError("cannot bootstrap zero rows")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    columns, position = _distinct_columns(np.hstack([numerators, denominators]))
    # with many statistics, (statistics x rows) @ (rows x resamples) ran faster in OpenBLAS here
    # than (resamples x rows) @ (rows x statistics); with a few, the reverse (measured on a
    # shared machine, where both orientations have occasional much slower runs)
    wide = columns.shape[1] >= _WIDE_STATISTICS
    columns_t = np.ascontiguousarray(columns.T) if wide else columns
    chunk = max(1, _CHUNK_CELLS // n_rows)
    result = np.empty((n_resamples, n_stats), dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        counts = resample_counts(n_rows, size, rng)
        distinct = (columns_t @ counts.T).T if wide else counts @ columns
        # a column of ones sums to the resample size, n_rows, exactly
        sums = np.column_stack([distinct, np.full(size, float(n_rows))])[:, position]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = sums[:, :n_stats] / sums[:, n_stats:]
        result[start : start + size] = np.where(sums[:, n_stats:] == 0, np.nan, ratio)
    return result


def _distinct_columns(stacked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of ``stacked`` other than columns of ones, and the position of each
    column of ``stacked`` among them (the last position, one past them, means ones).

    Estimators share columns (every IPS and DR denominator is ones, a policy's SNIPS weights
    serve all its metrics): resampling each distinct column once halves the matrix product.
    """
    n_columns = stacked.shape[1]
    ones = (stacked == 1.0).all(axis=0)
    seen: dict[bytes, int] = {}
    keep: list[int] = []
    position = np.empty(n_columns, dtype=np.intp)
    for j in range(n_columns):
        if ones[j]:
            continue
        key = np.ascontiguousarray(stacked[:, j]).tobytes()
        if key not in seen:
            seen[key] = len(keep)
            keep.append(j)
        position[j] = seen[key]
    position[ones] = len(keep)
    return np.ascontiguousarray(stacked[:, keep]), position


def percentile_interval(
    samples: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval per column of ``samples`` (``nan`` resamples ignored)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    tail = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(samples, [tail, 1.0 - tail], axis=0)
    return np.asarray(low), np.asarray(high)
