"""`psycopref estimate`: what a recipe needs before it runs, computed without a GPU: peak training memory
per device (memory.py), and GPU-hours and API dollars of a whole build (costs.py)."""
