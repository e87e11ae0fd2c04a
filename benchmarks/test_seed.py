"""The tutorial's experiments reproduced at their shape (group ``seed``).

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_seed_cpu = cell_test("test_seed_cpu")
test_seed_io = cell_test("test_seed_io")
test_seed_pool = cell_test("test_seed_pool")
