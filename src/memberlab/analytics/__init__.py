"""Member analytics: pure functions over Polars frames (RFM summaries, lifetime value).

Nothing here reads the clock, the database or a file: frames and arrays go in, frames and
typed results come out, so the same code runs on a consultant's export or on the store.
"""
