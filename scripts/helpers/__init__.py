"""What the benchmarks and the tests share: where the photos are (places), a command measured from
outside (measuring), and the loopback picture host (loopback)."""
