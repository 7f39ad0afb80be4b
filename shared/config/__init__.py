"""What a process is told: its settings, read from the environment, and the routes file.
Imports only the core."""
