"""The SQLite store's string dictionaries (message ids, product categories): each distinct value
gets a small integer code once, so packed histories hold int16 codes instead of strings."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from serving.stores.base import StoreError


class CodeDictionary:
    """Codes of one ``(code INTEGER PRIMARY KEY, <column> TEXT UNIQUE)`` table, cached.

    Codes are handed out in order and never change, so a cached dictionary is a prefix of the
    stored one: a code beyond ``ids`` means another process added values (``load`` again).
    """

    def __init__(self, table: str, column: str, max_codes: int) -> None:
        self.table = table
        self.column = column
        self.max_codes = max_codes
        self.codes: dict[str, int] = {}
        #: ``ids[code]`` is the value behind a code.
        self.ids: tuple[str, ...] = ()

    def load(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute(f"SELECT {self.column}, code FROM {self.table}").fetchall()
        self._set(dict(rows))

    def _set(self, codes: dict[str, int]) -> None:
        # ``ids`` before ``codes``: a reader that sees a code finds its id.
        self.ids = tuple(sorted(codes, key=codes.__getitem__))
        self.codes = codes

    def ensure(self, conn: sqlite3.Connection, values: Iterable[str]) -> None:
        """Give every new value the next code, inside the caller's write transaction (so two
        processes never hand out the same code)."""
        missing = [v for v in dict.fromkeys(values) if v not in self.codes]
        if not missing:
            return
        known = dict(conn.execute(f"SELECT {self.column}, code FROM {self.table}").fetchall())
        next_code = max(known.values(), default=-1) + 1
        new = [v for v in missing if v not in known]
        if next_code + len(new) > self.max_codes:
            raise StoreError(
                f"the store's {self.column} dictionary is full ({self.max_codes} distinct "
                f"{self.column} values): events cannot name more distinct ones"
            )
        for offset, value in enumerate(new):
            known[value] = next_code + offset
        conn.executemany(
            f"INSERT INTO {self.table} (code, {self.column}) VALUES (?, ?)",
            [(known[v], v) for v in new],
        )
        self._set(known)

    def stored(self, conn: sqlite3.Connection) -> tuple[str, ...]:
        """The dictionary as stored now (``stored()[code]`` is the value)."""
        rows = conn.execute(f"SELECT {self.column} FROM {self.table} ORDER BY code").fetchall()
        return tuple(r[0] for r in rows)
