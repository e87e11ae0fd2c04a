"""Mixed cells: a CPU share swept from 0 to 1, every model (the crossover chart's data).

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_mixed = cell_test("test_mixed")
