"""Extract files written the way the extractor writes them, with chosen usage figures."""

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa

from cora_pipeline.extract.files import FieldInfo, Manifest, new_extract_id, write_extract

ID_FIELD = FieldInfo(name="Id", type="id", arrow_type="string", nillable=False)


def write_usage_extract(
    data_root: Path,
    org: str,
    sobject: str,
    *,
    started: datetime,
    api_used: int,
    api_max: int,
    api_calls: int,
    run_id: str = "run-1",
    ids: tuple[str, ...] = (),
) -> Path:
    """Write a succeeded incremental extract that reports ``api_used`` of ``api_max``."""
    manifest = Manifest(
        org=org,
        object=sobject,
        extract_id=new_extract_id(started),
        mode="incremental",
        started_at=started.isoformat(),
        finished_at=(started + timedelta(seconds=20)).isoformat(),
        fields=[ID_FIELD],
        run_id=run_id,
        api_calls=api_calls,
        api_used=api_used,
        api_max=api_max,
        watermark_to=started.isoformat(),
    )
    records = pa.table({"Id": pa.array(list(ids), pa.string())})
    return write_extract(data_root, manifest, records)
