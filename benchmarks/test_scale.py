"""Scale cells: what each model costs per task, from 10 to 10,000 tasks (100,000 in full).

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_scale_io_sleep = cell_test("test_scale_io_sleep")
test_scale_io_spin = cell_test("test_scale_io_spin")
