"""The GIL convoy: echo latency of a server thread while CPU work shares its process.

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_convoy = cell_test("test_convoy")
