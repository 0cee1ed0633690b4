"""Copies of the reference solution with planted bugs, to check that the lab tests catch them."""
