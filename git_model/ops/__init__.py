"""Use cases: each takes a `Context` and arguments, does the work, and returns data.

Nothing here prints or exits: the CLI renders what these return, and the hooks and the Python
API call them directly.
"""
