"""scripts/bench.py's sections, a module each (imported there in the order they run)."""
