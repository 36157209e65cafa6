"""
The CSV files Wavy exports: verified while they download, parsed for XCom.

- :mod:`.checker`: :class:`~.checker.CsvChecker`, the front fed chunk by chunk (hash, byte count, errors);
- :mod:`.header`: the header line: recognised, split, checked against an export's columns;
- :mod:`.counter`: the data rows counted as ``csv.reader`` counts them (C scans, or NumPy when installed);
- :mod:`.errors`: :class:`~.errors.CsvError` and the wording of what a file host sends instead of CSV;
- :mod:`.first_row`: the ``require_rows`` check of both transports;
- :mod:`.xcom_rows`: a verified file parsed into rows for XCom, bounded by their JSON size.

Importing this package imports nothing else: the operator module imports :mod:`.xcom_rows` when a DAG file
is parsed, and the checker's imports are paid only by a task that downloads.
"""
