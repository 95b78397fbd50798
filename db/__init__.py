"""Database layer: tables, queries, ingestion and migrations. All SQL lives here."""
