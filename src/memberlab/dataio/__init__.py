"""Data in and out: client files (CSV in any Chinese encoding, XLSX, Parquet) imported with
their headers recognised and every bad row reported; stored data exported for Excel and
for analysis."""
