"""Network cells: every echo server style x payload x connections, over loopback.

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_echo = cell_test("test_echo")
