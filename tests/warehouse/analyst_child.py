"""Hold a connection to the analyst catalog open and run the SQL lines read from stdin.

Usage: ``python analyst_child.py CATALOG``. Prints ``open`` once connected, then one JSON array of
rows (or ``{"error": ...}``) per input line, until stdin closes.
"""

import json
import sys

import duckdb


def main() -> None:
    con = duckdb.connect(sys.argv[1], read_only=True)
    print("open", flush=True)
    for line in sys.stdin:
        try:
            result = con.execute(line).fetchall()
            print(json.dumps([list(row) for row in result], default=str), flush=True)
        except duckdb.Error as error:
            print(json.dumps({"error": str(error)}), flush=True)
    con.close()


if __name__ == "__main__":
    main()
