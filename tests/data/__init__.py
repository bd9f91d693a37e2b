"""Test data: the bad-input cases shared by the unit and the integration suites."""
