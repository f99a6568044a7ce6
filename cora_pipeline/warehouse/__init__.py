"""Change detection and the analyst warehouse.

:class:`Warehouse` turns extracts into DuckDB tables: ``<org>.<Object>`` (current state),
``<org>.<Object>_history`` (versions with ``valid_from``/``valid_to``/``is_deleted``),
``<org>.<Object>_as_of(at_time)`` (a table macro returning the object as it was) and the cross-org
``sync_runs``, ``record_changes``, ``field_changes`` and ``schema_changes``.

The first extract of an object is its baseline: it loads the snapshot and history, writes a
``sync_runs`` row with ``baseline = true`` and no record or field changes, because reporting every
existing record as created would drown the changes an analyst is looking for.
"""

from cora_pipeline.warehouse.apply import ApplyResult
from cora_pipeline.warehouse.store import ExtractOrderError, Warehouse, WarehouseLockedError

__all__ = ["ApplyResult", "ExtractOrderError", "Warehouse", "WarehouseLockedError"]
