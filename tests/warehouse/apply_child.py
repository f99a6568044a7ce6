"""Apply one extract in a child process and print a line right before and after COMMIT.

Usage: ``python apply_child.py DATA_ROOT EXTRACT_DIR [--pause-before-commit]``. The crash test kills
this process while the commit runs. With ``--pause-before-commit`` it kills it when every row is written
but not committed. The printed lines tell the test when that is.
"""

import sys
import time

import duckdb

from cora_pipeline.warehouse import Warehouse

PAUSE = "--pause-before-commit" in sys.argv


class AnnouncingWarehouse(Warehouse):
    def _commit(self, con: duckdb.DuckDBPyConnection) -> None:
        if PAUSE:
            print("written", flush=True)
            time.sleep(60)
        print("committing", flush=True)
        super()._commit(con)
        print("committed", flush=True)


def main() -> None:
    wh = AnnouncingWarehouse(sys.argv[1])
    try:
        wh.apply_extract(sys.argv[2])
    finally:
        wh.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
