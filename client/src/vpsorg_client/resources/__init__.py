"""One module per resource; each has a sync class and an async one sharing its logic."""
