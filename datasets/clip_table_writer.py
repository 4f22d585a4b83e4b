"""The output folder of `gid preprocess`, written so that nothing is lost, duplicated or half-visible.

Layout of ``DIR``::

    preprocess.json          the settings of the run (a rerun with other settings is refused)
    clips/{sid}-{n}.parquet  clip-table shards of source ``sid = sha1(key)[:16]`` (gid.datasets.clip_table)
    .pending/                shards of sources not yet committed (written by the workers)
    done/{run}-{n}.parquet   the done log: one row per finished source (key, status, counts, reasons),
                             one file per commit; its Parquet metadata holds the commit's merged sketch
    errors/{run}-{n}.parquet one row per problem (source, stage, error), same commit as done/{run}-{n}
    freq_scales.json         Eq. 4 scales, the nonzero 95th percentile of the merged sketches
    freq_stats.json          the merged sketch itself

Who writes what: a worker (:class:`SourceWriter`) writes a source's clip rows into
``.pending/{sid}-{n}.parquet``, each shard to a temporary name and renamed, and hands the driver one
small row (counts, filter reasons, errors, sketch). The driver (:class:`ClipStore`) commits finished
sources in groups: it renames their shards into ``clips/`` (metadata only, no clip bytes), writes the
group's errors, then the done-log file last. A source is finished iff the done log lists it; a rerun
skips those and redoes the rest (``--retry-failed``: the failed ones too; their old error rows stay). Shard names are deterministic (source, part number) and their
contents are too, so a redone or twice-delivered source overwrites the same names with the same
bytes: a killed and resumed run ends with exactly the rows of an uninterrupted one. Nothing is a
file per source on the done side: 10⁶ sources are ~10³ done-log files read once per run.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gid.datasets.clip_table import clip_table, parquet_options
from gid.datasets.video_io import atomic_path
from gid.pipeline.normalize import FrequencyStats, save_scales

ERROR_SCHEMA = pa.schema([("source", pa.string()), ("stage", pa.string()), ("error", pa.string())])
DONE_SCHEMA = pa.schema([("key", pa.string()), ("sid", pa.uint64()), ("status", pa.string()),
                         ("clips_written", pa.int32()), ("clips_filtered", pa.string()), ("errors", pa.int32())])
SKETCH_KEY = b"gid.sketch"


def source_id(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def source_number(key: str) -> int:
    """The 64-bit form of :func:`source_id`, as the done log stores it."""
    return int(source_id(key), 16)


def shard_name(key: str, part: int) -> str:
    return f"{source_id(key)}-{part:05d}.parquet"


class SourceWriter:
    """Worker side: the clip rows of one source into ``.pending/`` shards of ``rows_per_shard`` rows.

    Rows are streamed into the open shard as Parquet row groups of ``rows_per_group`` rows, so a
    worker holds at most that many rows whatever the video's length; a shard is written under a
    temporary name and renamed when complete.
    """

    def __init__(self, out_dir: str | Path, key: str, rows_per_shard: int = 32, rows_per_group: int = 4) -> None:
        self.pending, self.key = Path(out_dir) / ".pending", key
        self.rows_per_shard, self.rows_per_group = rows_per_shard, rows_per_group
        self.rows: list[dict[str, Any]] = []
        self.parts = 0
        self.in_shard = 0
        self.writer: pq.ParquetWriter | None = None
        self.tmp: Path | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.in_shard + len(self.rows) >= self.rows_per_shard:
            self._close_shard()
        elif len(self.rows) >= self.rows_per_group:
            self._write_group()

    def _write_group(self) -> None:
        if not self.rows:
            return
        table = clip_table(self.rows)
        if self.writer is None:
            self.pending.mkdir(parents=True, exist_ok=True)
            self.tmp = self.pending / f".{shard_name(self.key, self.parts)}.tmp{os.getpid()}"
            self.writer = pq.ParquetWriter(self.tmp, table.schema, **parquet_options(table.schema))
        self.writer.write_table(table)
        self.in_shard += len(self.rows)
        self.rows = []

    def _close_shard(self) -> None:
        self._write_group()
        if self.writer is not None:
            self.writer.close()
            os.replace(self.tmp, self.pending / shard_name(self.key, self.parts))
            self.parts += 1
            self.writer, self.tmp, self.in_shard = None, None, 0

    def close(self) -> int:
        """Write what is buffered; returns the number of shards (``{sid}-00000`` … in ``.pending/``)."""
        self._close_shard()
        return self.parts


@dataclass
class SourceResult:
    """The small row a worker hands the driver for one source (no clip data)."""

    key: str
    status: str  # ok | failed | skipped
    clips_written: int = 0
    parts: int = 0
    filtered: Counter = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    stats: FrequencyStats | None = None

    def to_row(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "clips_written": self.clips_written, "parts": self.parts,
                "filtered": json.dumps(dict(self.filtered)), "errors": json.dumps(self.errors),
                "stats": json.dumps(self.stats.to_json()) if self.stats is not None else ""}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "SourceResult":
        stats = FrequencyStats.from_json(json.loads(row["stats"])) if row["stats"] else None
        return cls(str(row["key"]), str(row["status"]), int(row["clips_written"]), int(row["parts"]),
                   Counter(json.loads(row["filtered"])), json.loads(row["errors"]), stats)


class ClipStore:
    """Driver side of one preprocessing output folder; see the module docstring for the layout.

    Args:
        commit_every: seconds between commits (a commit also happens when ``commit_rows`` results wait).
    """

    def __init__(self, out_dir: str | Path, settings: dict[str, Any], commit_every: float = 2.0,
                 commit_rows: int = 1000) -> None:
        self.root = Path(out_dir)
        self.commit_every, self.commit_rows = commit_every, commit_rows
        try:
            for sub in ("clips", "errors", "done", ".pending"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PermissionError(f"cannot write to --out {out_dir}: {err.strerror or err}; choose a writable folder") from None
        settings_path = self.root / "preprocess.json"
        if settings_path.is_file():
            previous = json.loads(settings_path.read_text())
            if previous != settings:
                changed = ", ".join(f"{k}: {previous.get(k)} → {v}" for k, v in settings.items() if previous.get(k) != v)
                raise ValueError(f"--out {out_dir} holds a run with other settings ({changed}); "
                                 "use a new --out folder or the same settings")
        else:
            with atomic_path(settings_path) as tmp:
                tmp.write_text(json.dumps(settings, indent=1))
        self.run = uuid.uuid4().hex[:8]
        self.commits = 0
        self.accepted: set[int] = set()  # sids recorded by this run (late duplicates are dropped)
        self.waiting: list[SourceResult] = []
        self.last_commit = -float("inf")

    def done_ids(self, retry_failed: bool = False) -> np.ndarray:
        """Sorted ``uint64`` ids of every source in the done log (8 bytes per source); with
        ``retry_failed``, only of those that finished ``ok`` at least once, so failed ones are redone."""
        parts = self._done_parts()
        if not parts:
            return np.zeros(0, np.uint64)
        logs = [pq.read_table(p, columns=["sid", "status"]) for p in parts]
        sids = [log["sid"].to_numpy()[np.asarray(log["status"].to_pylist()) == "ok"] if retry_failed
                else log["sid"].to_numpy() for log in logs]
        return np.unique(np.concatenate(sids)).astype(np.uint64)

    def done_log(self) -> pa.Table:
        """Every row of the done log (key, sid, status, clips_written, clips_filtered, errors)."""
        parts = self._done_parts()
        return pa.concat_tables([pq.read_table(p) for p in parts]) if parts else DONE_SCHEMA.empty_table()

    def _done_parts(self) -> list[Path]:
        return sorted(p for p in (self.root / "done").glob("*.parquet") if not p.name.startswith("."))

    def clear_pending(self) -> None:
        """Remove what uncommitted work left in ``.pending/`` (call when no worker of this folder runs)."""
        for stale in (self.root / ".pending").iterdir():
            stale.unlink()

    def record(self, result: SourceResult) -> bool:
        """Take a worker's result (``skipped`` ones are only counted); False for a duplicate (a re-executed task)."""
        sid = source_number(result.key)
        if sid in self.accepted:
            return False
        self.accepted.add(sid)
        if result.status == "skipped":
            return True
        self.waiting.append(result)
        if len(self.waiting) >= self.commit_rows or time.monotonic() - self.last_commit >= self.commit_every:
            self.commit()
        return True

    def commit(self) -> None:
        """Publish the waiting sources: shards into clips/, errors, then the done-log file (last)."""
        if not self.waiting:
            return
        name = f"{self.run}-{self.commits:06d}.parquet"
        sketch = None
        for result in self.waiting:
            for part in range(result.parts):
                os.replace(self.root / ".pending" / shard_name(result.key, part), self.root / "clips" / shard_name(result.key, part))
            if result.stats is not None:
                sketch = result.stats if sketch is None else sketch.merge(result.stats)
        errors = [e for r in self.waiting for e in r.errors]
        if errors:
            with atomic_path(self.root / "errors" / name) as tmp:
                pq.write_table(pa.Table.from_pylist(errors, schema=ERROR_SCHEMA), tmp)
        log = pa.Table.from_pylist([{
            "key": r.key, "sid": source_number(r.key), "status": r.status, "clips_written": r.clips_written,
            "clips_filtered": json.dumps(dict(r.filtered)), "errors": len(r.errors)} for r in self.waiting],
            schema=DONE_SCHEMA.with_metadata({SKETCH_KEY: json.dumps(sketch.to_json()) if sketch else ""}))
        with atomic_path(self.root / "done" / name) as tmp:
            pq.write_table(log, tmp)
        self.commits += 1
        self.waiting = []
        self.last_commit = time.monotonic()

    def write_scales(self, num_freqs: int, quantile: float = 0.95) -> FrequencyStats | None:
        """Merge the sketches of every done-log file into ``freq_stats.json`` and ``freq_scales.json``.

        Returns the merged sketch, or ``None`` when no clip was written (then no scales exist).
        """
        merged = None
        for part in self._done_parts():
            text = (pq.read_schema(part).metadata or {}).get(SKETCH_KEY, b"")
            if text:
                sketch = FrequencyStats.from_json(json.loads(text))
                merged = sketch if merged is None else merged.merge(sketch)
        if merged is None:
            return None
        merged.save(self.root / "freq_stats.json")
        scales = merged.quantile(quantile, nonzero=True)
        if (scales > 0).all():
            save_scales(self.root / "freq_scales.json", scales, quantile, nonzero=True,
                        relative_error=merged.relative_error, num_freqs=num_freqs)
        return merged

    def read_errors(self) -> pa.Table:
        """All error rows (``source``, ``stage``, ``error``) of committed sources."""
        committed = {p.name for p in self._done_parts()}
        paths = sorted(p for p in (self.root / "errors").glob("*.parquet") if p.name in committed)
        return pa.concat_tables([pq.read_table(p) for p in paths]) if paths else ERROR_SCHEMA.empty_table()
