"""One comparison run: the pure run plan, its named steps, and the isolated worker processes."""
