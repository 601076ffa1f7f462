"""Member profiles, personal-data protection, tags."""
