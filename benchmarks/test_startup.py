"""Start-up cost of each pool model: create, a first result from every worker, shut down.

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_startup = cell_test("test_startup")
