#!/usr/bin/env python3
"""Copies a registry's SQLite file into a PostgreSQL database made with
src/registry/store/migrations/postgres/01_schema.sql, to show that the schema takes every value
the store writes (the demo seeds through the real store code).

    tests/postgres/copy_check.py SQLITE_FILE POSTGRES_URL

Before the copy, every SQLite value is checked against the PostgreSQL column it goes into
(SQLite's typeof: integer into BIGINT, text into TEXT/citext, NULL only where allowed). The
copy runs in one psql session with ON_ERROR_STOP, table by table in the order the schema
creates them (references first), every row through COPY (so every constraint, reference and
the case-insensitive uniques are checked); campaigns.rowid takes SQLite's rowid; the identity
sequences are then set past the copied ids. Prints the rows per table; exits non-zero on the
first refusal. The database must be empty (freshly made with the schema).
"""
import sqlite3
import subprocess
import sys


def pg_rows(url, sql):
    out = subprocess.run(["psql", url, "-XAt", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def copy_text(value):
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        raise ValueError("a BLOB value: no column of the schema takes bytes")
    text = str(value)
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sq = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    url = sys.argv[2]
    # Tables in creation order (the schema creates referenced tables first).
    tables = [r[0] for r in pg_rows(url, """SELECT c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.oid""")]
    problems = []
    script = ["\\set ON_ERROR_STOP 1", "BEGIN;"]
    counts = {}
    for table in tables:
        cols = pg_rows(url, f"""SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
            a.attidentity FROM pg_attribute a WHERE a.attrelid = 'public.{table}'::regclass
            AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""")
        names = [c[0] for c in cols]
        select = ", ".join("rowid" if (table == "campaigns" and n == "rowid") else f'"{n}"'
                           for n in names)
        order = "rowid" if table != "counters" else "name"
        try:
            rows = sq.execute(f"SELECT {select} FROM {table} ORDER BY {order}").fetchall()
        except sqlite3.OperationalError:  # WITHOUT ROWID tables: primary key order
            rows = sq.execute(f"SELECT {select} FROM {table}").fetchall()
        counts[table] = len(rows)
        for (name, typ, notnull, _identity) in cols:
            i = names.index(name)
            kinds = {}
            for row in rows:
                v = row[i]
                k = ("null" if v is None else "integer" if isinstance(v, int)
                     else "text" if isinstance(v, str) else type(v).__name__)
                kinds[k] = kinds.get(k, 0) + 1
            allowed = {"bigint": {"integer"}, "text": {"text"}, "citext": {"text"}}[typ]
            if notnull != "t":
                allowed = allowed | {"null"}
            wrong = {k: n for k, n in kinds.items() if k not in allowed}
            if wrong:
                problems.append(f"{table}.{name} ({typ}{' NOT NULL' if notnull == 't' else ''}): {wrong}")
        if table == "counters":
            script.append("DELETE FROM counters;")
        if rows:
            script.append(f"COPY {table} ({', '.join(chr(34) + n + chr(34) for n in names)}) FROM STDIN;")
            script.extend("\t".join(copy_text(v) for v in row) for row in rows)
            script.append("\\.")
        for (name, _typ, _nn, identity) in cols:
            if identity in ("a", "d"):
                script.append(f"SELECT setval(pg_get_serial_sequence('{table}', '{name}'), "
                              f"coalesce(max({name}), 0) + 1, false) FROM {table} \\g /dev/null")
    script.append("COMMIT;")
    if problems:
        print("values the schema would not take as they are:")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    done = subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                          input="\n".join(script) + "\n", text=True, capture_output=True)
    if done.returncode != 0:
        print(done.stderr.strip())
        sys.exit(1)
    copied = {r[0]: int(r[1]) for r in pg_rows(url, " UNION ALL ".join(
        f"SELECT '{t}', count(*) FROM {t}" for t in tables))}
    for t in tables:
        mark = "" if copied[t] == counts[t] else f"  MISMATCH (sqlite {counts[t]})"
        print(f"{t:24} {copied[t]:8}{mark}")
    if any(copied[t] != counts[t] for t in tables):
        sys.exit(1)
    print(f"copied {sum(counts.values())} rows of {len(tables)} tables")


if __name__ == "__main__":
    main()
