"""Recipes shipped inside the wheel so `psycopref demo` works from any install."""
