"""Socket I/O cells: io_socket under every model, against a loopback echo server.

The cells are ``benchmarks/catalogue.py``'s entries of the same names.
"""

from benchmarks._harness import cell_test

test_io_socket = cell_test("test_io_socket")
