"""Change detection and the analyst warehouse.

:class:`Warehouse` turns extracts into DuckDB tables: ``<org>.<Object>`` (current state),
``<org>.<Object>_history`` (versions with ``valid_from``/``valid_to``/``is_deleted``),
``<org>.<Object>_as_of(at_time)`` (a table macro returning the object as it was) and the cross-org
``sync_runs``, ``record_changes``, ``field_changes`` and ``schema_changes``.

The first extract of an object is its baseline. It loads the snapshot and history and writes a
``sync_runs`` row with ``baseline = true``, but no record or field changes, because reporting every
existing record as created would drown the changes an analyst is looking for. The README next to this
module describes the tables, the canonical value text, causes, schema changes and the analyst catalog.
"""

from cora_pipeline.warehouse.apply import ApplyResult, InvalidExtractError
from cora_pipeline.warehouse.store import ExtractOrderError, Warehouse, WarehouseLockedError

__all__ = [
    "ApplyResult",
    "ExtractOrderError",
    "InvalidExtractError",
    "Warehouse",
    "WarehouseLockedError",
]
