"""``gid.testing``: the harness that tests and benchmarks share, installed with gid but not part of the
pipeline: a real multi-node Ray cluster on one machine (:mod:`.local_cluster`), process-tree memory
sampling from /proc (:mod:`.procfs`), renderer scoring against real frames (:mod:`.render_eval`) and
untrained model bundles (:mod:`.bundles`)."""
