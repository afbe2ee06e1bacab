"""The metrics a group of workers shares: one shared-memory region per worker process.

Theory of operation.  With ``--workers``, a scrape reaches one process (a
worker on the main bind, or the supervisor on ``--metrics-bind``) and must
see them all.  The supervisor maps an anonymous shared ``mmap`` before it
forks, so every worker sees the same pages without a file, a socket or a
message to the supervisor.  Region 0 is the supervisor's: the counters of
the workers that have exited, by slot (``evloop.metrics.fold``).  Each
worker gets a free region at its fork and writes its snapshot there (JSON)
once a second, at each scrape it answers, and as it exits; the supervisor
folds the last one into region 0 when it reaps the worker and frees the
region.  A reader takes every region and renders their union (series
labelled ``worker="N"``, N the slot).

One writer per region; readers run in other processes at any time, so a
region is written seqlock-style: its sequence number is odd while the
bytes change, and a reader that sees it odd, or changed by the time it
has read, reads again (a few times; then it skips the region this once).
"""

from __future__ import annotations

import json
import logging
import mmap
import struct
from typing import Any

__all__ = ["MetricsTable", "RETIRED"]

logger = logging.getLogger("evloop.workers")

RETIRED = 0  # the region of the exited workers' counters
_HEADER = struct.Struct("<QI")  # sequence number, length of the JSON that follows
_READ_ATTEMPTS = 5


class MetricsTable:
    """``regions`` regions of ``region_bytes`` each, shared with the processes forked after it is made."""

    def __init__(self, regions: int = 64, region_bytes: int = 64 * 1024) -> None:
        self.regions = regions
        self.region_bytes = region_bytes
        self._map = mmap.mmap(-1, regions * region_bytes, flags=mmap.MAP_SHARED)
        self._free = list(range(regions - 1, RETIRED, -1))  # the supervisor's: regions no worker holds
        self._retired: dict[int, dict[str, Any]] = {}  # slot -> counters of its exited workers
        self._too_big_logged = False

    def close(self) -> None:
        self._map.close()

    # ------------------------------------------------------------ supervisor
    def allocate(self) -> int | None:
        """A region for a new worker, or None when every one is taken (its figures are then not shared)."""
        if not self._free:
            logger.warning("metrics: every one of %d regions is taken; a new worker's figures are left out",
                           self.regions - 1)
            return None
        return self._free.pop()

    def retire(self, region: int, slot: int) -> None:
        """A worker exited: its last counters join its slot's retired totals, and its region is free again."""
        snapshot = self.read(region)
        if snapshot is not None:
            from ..metrics import fold

            fold(self._retired.setdefault(slot, {}), snapshot.get("counters") or {})
            self.write(RETIRED, [{"worker": s, "counters": c} for s, c in sorted(self._retired.items())])
        self.write(region, None)
        self._free.append(region)

    # ----------------------------------------------------------------- all
    def write(self, region: int, value: Any) -> bool:
        """Store ``value`` (JSON; None empties the region); False when it does not fit (logged once)."""
        data = b"" if value is None else json.dumps(value, separators=(",", ":")).encode()
        if _HEADER.size + len(data) > self.region_bytes:
            if not self._too_big_logged:
                self._too_big_logged = True
                logger.warning("metrics: a snapshot of %d bytes does not fit in its region", len(data))
            return False
        start = region * self.region_bytes
        view = self._map
        sequence = _HEADER.unpack_from(view, start)[0]
        # Odd while being written.  Already odd: a writer was killed mid-write
        # (SIGKILL of a silent worker), and this write (the supervisor's) ends it.
        writing = sequence if sequence % 2 else sequence + 1
        _HEADER.pack_into(view, start, writing, 0)
        view[start + _HEADER.size:start + _HEADER.size + len(data)] = data
        _HEADER.pack_into(view, start, writing + 1, len(data))
        return True

    def read(self, region: int) -> Any:
        """The value in ``region``: None when empty, or when it kept changing under the reader."""
        start = region * self.region_bytes
        view = self._map
        for _ in range(_READ_ATTEMPTS):
            sequence, length = _HEADER.unpack_from(view, start)
            if sequence % 2:
                continue
            data = view[start + _HEADER.size:start + _HEADER.size + length]
            if _HEADER.unpack_from(view, start)[0] != sequence:
                continue
            return json.loads(data) if data else None
        return None

    def snapshots(self) -> list[dict[str, Any]]:
        """Every region's snapshot: the retired totals (one per slot), then each live worker's."""
        result: list[dict[str, Any]] = list(self.read(RETIRED) or [])
        for region in range(1, self.regions):
            snapshot = self.read(region)
            if snapshot is not None:
                result.append(snapshot)
        return result
