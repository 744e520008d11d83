"""Plain pandas/sklearn restatements of the reference algorithms, used as yardsticks."""
