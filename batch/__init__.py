"""Batch scoring: the exported model over a CSV or Parquet file of any size, in chunks."""
