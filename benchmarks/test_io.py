"""I/O-bound cells: io_sleep under every model.

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_io_sleep = cell_test("test_io_sleep")
