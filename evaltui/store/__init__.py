"""The evaltui store: the only package that speaks SQL (see DESIGN.md)."""

from evaltui.store.connection import Store, default_db_path
from evaltui.store.errors import NotFound, RecordError, SchemaError, StoreError
from evaltui.store.readers import (
    experiment_fields,
    find_experiment,
    load_experiment_spans,
    load_experiments,
    load_projects,
    load_span,
    load_span_rows,
    load_trace_rows,
    load_trace_spans,
    score_means,
)
from evaltui.store.schema import SCHEMA_VERSION
from evaltui.store.onespan import encode_root
from evaltui.store.writers import (
    SpanWriter,
    comparison_key_spec,
    create_experiment,
    delete_experiment,
    ensure_project,
    prepare_roots,
    project_settings,
    recompute_traces,
    set_review,
    update_experiment,
    update_project_settings,
    write_span_batches,
    write_spans,
)

__all__ = [
    "SCHEMA_VERSION",
    "SpanWriter",
    "NotFound",
    "RecordError",
    "SchemaError",
    "Store",
    "StoreError",
    "comparison_key_spec",
    "create_experiment",
    "default_db_path",
    "delete_experiment",
    "encode_root",
    "ensure_project",
    "experiment_fields",
    "find_experiment",
    "load_experiment_spans",
    "load_experiments",
    "load_projects",
    "load_span",
    "load_span_rows",
    "load_trace_rows",
    "load_trace_spans",
    "prepare_roots",
    "project_settings",
    "recompute_traces",
    "score_means",
    "set_review",
    "update_experiment",
    "update_project_settings",
    "write_span_batches",
    "write_spans",
]
