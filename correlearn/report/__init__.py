"""A flow run's report: one self-contained HTML file (inline CSS, pictures as base64 PNG).

Sections (element ids, :data:`SECTION_IDS`, which ``bin/check_report.py`` and the tests look for):

- ``summary``: flow, status, config, MLflow run, stage and cache-hit counts;
- ``demo-table`` (a flow of flows only): :func:`correlearn.demo_tables.demo_table` of its flows;
- ``stages``: label, stage, cache hit, seconds (the manifest's, i.e. when it was computed), key;
- ``jf``: DAVIS J&F per sequence of every label-propagation call, one column per evaluated
  checkpoint, the baselines last, as a table and a bar chart (:mod:`correlearn.report.jf`);
- ``loss-curves``: the held-out J&F-vs-steps curve of each evaluated method (its baselines as
  lines) and ``pictures/loss_curve.png`` of the training artifacts;
- ``pictures``: the other PNGs listed in each manifest's ``pictures``.

Everything is read from the artifacts that the :class:`~correlearn.records.FlowRun`'s stage runs
name, so a report of cache hits is the same as one of fresh runs. The modules:
:mod:`~correlearn.report.document` (the page and its files), :mod:`~correlearn.report.sections`
(the stage-call sections), :mod:`~correlearn.report.jf` (J&F tables, charts and curves) and
:mod:`~correlearn.report.markup` (escaping, embedded pictures).
"""

from correlearn.report.document import publish_report, render_report, write_report
from correlearn.report.jf import lp_results

#: The element ids every report has (``demo-table`` comes on top of them for a flow of flows).
SECTION_IDS = ("summary", "stages", "jf", "loss-curves", "pictures")

__all__ = ["SECTION_IDS", "lp_results", "publish_report", "render_report", "write_report"]
