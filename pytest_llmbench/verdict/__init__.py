"""Decide: what an item's reports mean, the gates on items and repeat groups, saved baselines
and the comparison with them, and the run's one verdict."""
