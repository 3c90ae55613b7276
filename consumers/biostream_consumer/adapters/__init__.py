"""DuckDB local copy, the Kafka catch-up loop, the OMOP export and the plot."""
