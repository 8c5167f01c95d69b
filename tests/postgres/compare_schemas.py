#!/usr/bin/env python3
"""Compares the schema that SQLite's migrations end with and the PostgreSQL schema, table by
table: tables, columns in order, types (INTEGER -> bigint, TEXT -> text, a COLLATE NOCASE column
-> citext; citext also allowed on other TEXT columns), NOT NULL, defaults, primary keys, unique
constraints, foreign keys, and every named SQLite index present in PostgreSQL under its name.
Prints the indexes side by side, then 'no problems' or each difference (exit 1).

    tests/postgres/compare_schemas.py POSTGRES_URL

POSTGRES_URL is a database where src/registry/store/migrations/postgres/01_schema.sql was
applied; the SQLite side is built here from src/registry/store/migrations/sqlite/*.sql, in order.
Known, deliberate differences (campaigns.rowid, agents_text -> agents_text_trgm, the
audit_no_truncate trigger) are reported as notes, not problems.
"""
import glob
import os
import sqlite3
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
if len(sys.argv) != 2:
    sys.exit(__doc__)
sq = sqlite3.connect(":memory:")
for path in sorted(glob.glob(os.path.join(ROOT, "src/registry/store/migrations/sqlite/*.sql"))):
    sq.executescript(open(path).read())
url = sys.argv[1]
def pg(sql):
    out = subprocess.run(["psql", url, "-XAtF\t", "-c", sql], capture_output=True, text=True, check=True).stdout
    return [l.split("\t") for l in out.splitlines() if l]
tmap = {"INTEGER": "bigint", "TEXT": "text", "REAL": "double precision", "BLOB": "bytea"}
problems = []
stabs = [r[0] for r in sq.execute("select name from sqlite_master where type='table' and name not like 'sqlite_%' and name not like 'agents_text%' order by name")]
ptabs = [r[0] for r in pg("select tablename from pg_tables where schemaname='public' order by tablename")]
if sorted(stabs) != sorted(ptabs): problems.append(("tables", sorted(set(stabs) ^ set(ptabs))))
for t in stabs:
    scols = list(sq.execute(f"pragma table_xinfo('{t}')"))  # cid,name,type,notnull,dflt,pk,hidden
    sql = sq.execute("select sql from sqlite_master where name=?", (t,)).fetchone()[0]
    pcols = pg(f"""select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
        coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity
        from pg_attribute a left join pg_attrdef d on d.adrelid=a.attrelid and d.adnum=a.attnum
        where a.attrelid='public.{t}'::regclass and a.attnum>0 and not a.attisdropped order by a.attnum""")
    sn = [c[1] for c in scols]; pn = [c[0] for c in pcols]
    if pn[:len(sn)] != sn: problems.append((t, "column order", sn, pn))
    if pn[len(sn):]: print(f"note: {t} has extra PG columns {pn[len(sn):]}")
    for s, p in zip(scols, pcols):
        name, typ, notnull, dflt, pk = s[1], s[2], s[3], s[4], s[5]
        # collation NOCASE in the column definition?
        nocase = False
        for line in sql.splitlines():
            if line.strip().startswith(name + " ") and "NOCASE" in line: nocase = True
        want = "citext" if nocase else tmap[typ]
        if p[1] != want and not (p[1] == "citext"): problems.append((t, name, "type", typ, p[1]))
        if p[1] == "citext" and typ != "TEXT": problems.append((t, name, "citext on non-text"))
        pk_notnull = pk > 0  # PG forces NOT NULL on PK columns
        if bool(notnull) != (p[2] == "t") and not (pk_notnull and p[2] == "t"):
            problems.append((t, name, "notnull", notnull, p[2]))
        pd = p[3]
        if p[4] in ("a", "d"): pd = "<identity>"
        sd = dflt
        if sd is None and pd == "<identity>" and typ == "INTEGER" and pk == 1: continue
        norm = lambda x: (x or "").replace("::text", "").replace("::citext", "").strip()
        if norm(sd) != norm(pd): problems.append((t, name, "default", sd, pd))
    # primary key
    spk = [c[1] for c in sorted(scols, key=lambda c: c[5]) if c[5] > 0]
    ppk = [r[0] for r in pg(f"""select a.attname from pg_index i join pg_attribute a on a.attrelid=i.indrelid
        and a.attnum = any(i.indkey) where i.indrelid='public.{t}'::regclass and i.indisprimary
        order by array_position(i.indkey::int2[], a.attnum)""")]
    if spk != ppk: problems.append((t, "pk", spk, ppk))
    # foreign keys
    sfk = sorted((r[3], r[2], r[4] or "") for r in sq.execute(f"pragma foreign_key_list('{t}')"))
    pfk = sorted((r[0], r[1], r[2]) for r in pg(f"""select a.attname, cl.relname, af.attname from pg_constraint c
        join pg_attribute a on a.attrelid=c.conrelid and a.attnum=c.conkey[1]
        join pg_class cl on cl.oid=c.confrelid
        join pg_attribute af on af.attrelid=c.confrelid and af.attnum=c.confkey[1]
        where c.conrelid='public.{t}'::regclass and c.contype='f'"""))
    # SQLite leaves the referenced column empty when it is the primary key
    sfk = sorted((a, b, c or "id") for a, b, c in sfk)
    if sfk != pfk: problems.append((t, "fk", sfk, pfk))
    # unique constraints / indexes (sqlite autoindexes) vs PG unique constraints
    suq = sorted(tuple(sq.execute(f"pragma index_info('{ix[1]}')").fetchall() and [r[2] for r in sq.execute(f"pragma index_info('{ix[1]}')")]) for ix in sq.execute(f"pragma index_list('{t}')") if ix[2] == 1 and ix[3] == "u")
    puq = sorted(tuple(r[0].split(",")) for r in pg(f"""select string_agg(a.attname, ',' order by array_position(i.indkey::int2[], a.attnum))
        from pg_index i join pg_attribute a on a.attrelid=i.indrelid and a.attnum=any(i.indkey)
        where i.indrelid='public.{t}'::regclass and i.indisunique and not i.indisprimary group by i.indexrelid"""))
    if t == "campaigns": puq = [u for u in puq if u != ("rowid",)]
    if suq != puq: problems.append((t, "unique", suq, puq))
# named indexes
six = {r[0]: (r[1], r[2]) for r in sq.execute("select name, tbl_name, sql from sqlite_master where type='index' and sql is not null")}
pix = {r[0]: (r[1], r[2]) for r in pg("select indexname, tablename, indexdef from pg_indexes where schemaname='public'")}


def index_shape(text):
    """'tbl(a, b) WHERE x' or 'public.tbl USING btree (a, b) WHERE (x)' -> ('tbl', 'a,b', 'x')."""
    on = text.split(" ON ", 1)[1]
    table = on.split("(", 1)[0].split(" USING ", 1)[0].strip().removeprefix("public.")
    cols, _, where = on.split("(", 1)[1].partition(")")
    where = where.partition("WHERE")[2].strip()
    cols = ",".join(c.replace("COLLATE NOCASE", "").replace('"', "").strip() for c in cols.split(","))
    where = where.replace("::text", "").strip()
    while where.startswith("(") and where.endswith(")"):
        where = where[1:-1].strip()
    return table, cols, where


for name, (tbl, sql) in sorted(six.items()):
    if name not in pix:
        problems.append(("index missing", name))
        continue
    if index_shape(sql) != index_shape(pix[name][1]):
        problems.append(("index differs", name, index_shape(sql), index_shape(pix[name][1])))
    print(f"index {name}: sqlite[{sql.split(' ON ', 1)[1]}]  pg[{pix[name][1].split(' ON ', 1)[1]}]")
extra = sorted(n for n in pix if n not in six and not n.endswith("_pkey") and not n.endswith("_key"))
print("extra PG indexes:", extra)
strig = sorted(r[0] for r in sq.execute("select name from sqlite_master where type='trigger'"))
ptrig = sorted(r[0] for r in pg("select tgname from pg_trigger where not tgisinternal"))
print("sqlite triggers:", strig, "\npg triggers:", ptrig)
print("PROBLEMS:" if problems else "no problems")
for p in problems: print("  ", p)
sys.exit(1 if problems else 0)
