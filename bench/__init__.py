"""`make bench`: benchmarks of the real pieces (not timed tests). See bench/__main__.py."""
