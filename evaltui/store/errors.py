"""Errors the store raises; each message says what went wrong and where."""


class StoreError(Exception):
    """Base class for errors a user can act on (shown as one line, no traceback)."""


class SchemaError(StoreError):
    """The database file has a schema this evaltui cannot open."""


class RecordError(StoreError):
    """A record in a batch is invalid; nothing of the batch was written."""

    def __init__(self, index: int, field: str, problem: str, record_id: str | None = None):
        self.index = index
        self.field = field
        self.problem = problem
        self.record_id = record_id
        where = f"record {index}" + (f" (id {record_id!r})" if record_id else "")
        super().__init__(f"{where}, field {field!r}: {problem}")


class NotFound(StoreError):
    """A project, experiment or trace that was named does not exist."""
