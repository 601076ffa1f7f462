"""Customer experience: survey responses (and, later, surveys, comments, drivers, cases)."""
