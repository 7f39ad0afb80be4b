"""The wiring of a running process: the composition root, the HTTP boundary, logs and task
dispatch. The only layer that may import every other."""
