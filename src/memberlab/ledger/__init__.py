"""Points and growth ledgers, lots, expiry, returns, jobs: the live driver of the rules."""
