"""Users' own workloads (``--workload module:NAME[,key=value...]``) under every model.

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_workload = cell_test("test_workload")
