"""The output folder of `gid preprocess`, written so that nothing is lost, duplicated or half-visible.

Layout of ``DIR``::

    preprocess.json        the settings of the run (a rerun with other settings is refused)
    clips/{sid}-{n}.parquet  clip-table shards of source ``sid = sha1(source)[:16]`` (gid.datasets.clips)
    errors/{sid}.parquet   one row per problem: source, stage, error
    done/{sid}.json        done marker: counts, filter reasons and the source's FrequencyStats sketch
    .pending/              shards of sources still in progress
    freq_scales.json       Eq. 4 scales, the nonzero 95th percentile of the merged sketches
    freq_stats.json        the merged sketch itself

Every file is written to a temporary name and renamed. A source's shards go to ``.pending/`` while
it is processed, move to ``clips/`` when it is complete, then its marker is written: a source with a
marker is finished and skipped by a rerun; a source without one is started again from scratch
(its leftovers deleted first), so a killed and resumed run ends with exactly the rows of an
uninterrupted one. The scales are recomputed from all markers, so they cover every row, whichever
run wrote it.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gid.datasets.clips import write_shard
from gid.datasets.video import atomic_path
from gid.pipeline.normalize import FrequencyStats, save_scales

ERROR_SCHEMA = pa.schema([("source", pa.string()), ("stage", pa.string()), ("error", pa.string())])


def source_id(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()[:16]


@dataclass
class SourceProgress:
    """What has arrived for one source while its clips are in flight."""

    source: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    parts: int = 0
    written: int = 0
    filtered: Counter = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    stats: FrequencyStats | None = None
    results: int = 0
    seen: set[int] = field(default_factory=set)  # start frames received
    file_error: bool = False
    expected: int | None = None  # clips the decoder produced, known when it finished the file

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.results >= self.expected


class ClipStore:
    """Writes one preprocessing output folder; see the module docstring for the layout."""

    def __init__(self, out_dir: str | Path, settings: dict[str, Any], rows_per_shard: int = 32) -> None:
        self.root = Path(out_dir)
        self.rows_per_shard = rows_per_shard
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
        self.open: dict[str, SourceProgress] = {}
        self.finished: set[str] = set()

    def is_done(self, source: str) -> bool:
        return (self.root / "done" / f"{source_id(source)}.json").is_file()

    def begin(self, source: str) -> SourceProgress:
        """Start (or restart) a source: delete whatever an interrupted run left of it."""
        sid = source_id(source)
        for folder in ("clips", ".pending"):
            for stale in (self.root / folder).glob(f"{sid}-*.parquet"):
                stale.unlink()
        (self.root / "errors" / f"{sid}.parquet").unlink(missing_ok=True)
        self.open[source] = SourceProgress(source)
        return self.open[source]

    def _first_time(self, progress: SourceProgress, start_frame: int) -> bool:
        """False for a clip already received (Ray may re-run a task whose outputs were delivered)."""
        if start_frame in progress.seen:
            return False
        progress.seen.add(start_frame)
        progress.results += 1
        return True

    def add_clip(self, source: str, start_frame: int, row: dict[str, Any] | None, stats: FrequencyStats | None,
                 reason: str | None) -> None:
        """One processed clip: a row to write (``reason`` None) or a filter reason."""
        progress = self.open[source]
        if not self._first_time(progress, start_frame):
            return
        if reason is not None:
            progress.filtered[reason] += 1
            return
        progress.rows.append(row)
        progress.written += 1
        progress.stats = stats if progress.stats is None else progress.stats.merge(stats)
        if len(progress.rows) >= self.rows_per_shard:
            self._flush(progress)

    def add_error(self, source: str, stage: str, error: str, start_frame: int | None = None) -> None:
        """A problem with one clip (``start_frame``) or with the whole file (``None``)."""
        progress = self.open[source]
        if start_frame is None:
            if progress.file_error:
                return
            progress.file_error = True
        elif not self._first_time(progress, start_frame):
            return
        progress.errors.append({"source": source, "stage": stage, "error": error})

    def end_of_source(self, source: str, num_clips: int) -> None:
        self.open[source].expected = num_clips

    def accepts(self, source: str) -> bool:
        """False for a source this run already published: late duplicates of its rows are dropped."""
        return source not in self.finished

    def _flush(self, progress: SourceProgress) -> None:
        if progress.rows:
            name = f"{source_id(progress.source)}-{progress.parts:05d}.parquet"
            write_shard(progress.rows, self.root / ".pending" / name)
            progress.parts += 1
            progress.rows = []

    def finish(self, source: str) -> SourceProgress:
        """Publish a complete source: shards into clips/, errors, then the done marker (last)."""
        progress = self.open.pop(source)
        self.finished.add(source)
        self._flush(progress)
        sid = source_id(source)
        for part in sorted((self.root / ".pending").glob(f"{sid}-*.parquet")):
            os.replace(part, self.root / "clips" / part.name)
        if progress.errors:
            with atomic_path(self.root / "errors" / f"{sid}.parquet") as tmp:
                pq.write_table(pa.Table.from_pylist(progress.errors, schema=ERROR_SCHEMA), tmp)
        marker = {
            "source": source, "status": "failed" if progress.errors else "ok", "clips_written": progress.written,
            "clips_filtered": dict(progress.filtered), "errors": len(progress.errors),
            "stats": progress.stats.to_json() if progress.stats is not None else None,
        }
        with atomic_path(self.root / "done" / f"{sid}.json") as tmp:
            tmp.write_text(json.dumps(marker))
        return progress

    def markers(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted((self.root / "done").glob("*.json"))]

    def write_scales(self, num_freqs: int, quantile: float = 0.95) -> FrequencyStats | None:
        """Merge every source's sketch into ``freq_stats.json`` and ``freq_scales.json``.

        Returns the merged sketch, or ``None`` when no clip was written (then no scales exist).
        """
        merged = None
        for marker in self.markers():
            if marker["stats"] is not None:
                sketch = FrequencyStats.from_json(marker["stats"])
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
        """All error rows (``source``, ``stage``, ``error``) of the folder."""
        paths = sorted(p for p in (self.root / "errors").glob("*.parquet") if not p.name.startswith("."))
        if not paths:
            return ERROR_SCHEMA.empty_table()
        return pa.concat_tables([pq.read_table(p) for p in paths])
