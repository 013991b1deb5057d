"""LIFT."""
