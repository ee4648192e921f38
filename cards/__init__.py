"""Jinja templates for dataset and model cards, shipped inside the wheel."""
