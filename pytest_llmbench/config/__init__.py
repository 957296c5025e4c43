"""Configure: the run's options and ini twins, model specs, threshold grammar, and what one
test's marker asks for, parsed and checked before any test runs."""
