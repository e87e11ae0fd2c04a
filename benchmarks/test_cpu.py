"""CPU-bound cells: cpu_loop (holds the GIL) and cpu_native (releases it), every model.

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_cpu_loop = cell_test("test_cpu_loop")
test_cpu_native = cell_test("test_cpu_native")
