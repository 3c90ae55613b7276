"""biostream consumer toolkit: what an approved research project runs at its own site.

It keeps a local DuckDB copy of the project's curated dataset up to date (records, corrections,
withdrawals, resumable from offsets stored with the data), exports it as OMOP CDM 5.4 tables and
plots the dataset's size and freshness. Not a pipeline service: it only reads.
"""
