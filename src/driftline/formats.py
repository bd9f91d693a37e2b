"""The file formats Driftline reads, by their names' suffixes, compound ones first (``x.csv.gz`` ends with
``.gz`` too): what a folder reads, where a row is located by its row rather than its line, and what a model
named after its data file leaves out. The content decides how a file is read (``sources._sniff_format``)."""

from __future__ import annotations

TEXT = (".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".csv", ".tsv.gz", ".tsv.bz2", ".tsv.xz", ".tsv.zip", ".tsv")
PARQUET = (".parquet", ".pq")
JSON = (".json.gz", ".jsonl.gz", ".json", ".jsonl", ".ndjson")
TABLES = (".xlsx", ".xls", ".ods", ".feather", ".arrow")  # workbooks and Arrow files

# What a folder reads (a glob reads what it names besides these: ``Stocks/*.txt``, ``api/*.json``; a folder's
# other files, a dataset's metadata.json, are not data).
FOLDER_FILES = (*TEXT, *PARQUET, ".zip", *TABLES)
# Files whose rows are located as ``row N`` (no lines of text, or a line that is not a row).
ROW_FILES = (*PARQUET, *JSON, *TABLES)
# Suffixes a pipeline named after its data file leaves out (``BTC 1h.csv.gz`` -> ``BTC-1h``).
NAME_SUFFIXES = (*TEXT, ".txt", *PARQUET, *JSON, ".gz", ".bz2", ".xz", ".zip", *TABLES)
