"""Background jobs over a whole catalog: imports (imports.py, on AWS import_runs.py; the rows they
read: catalog_rows.py) and the catalog-wide duplicate scans (scans.py).
"""
