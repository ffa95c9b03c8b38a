"""One module per CLI verb: thin click shims over the plain functions of the package."""
