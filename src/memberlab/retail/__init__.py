"""The client's retail network: stores and products (reference data for imports and analyses)."""
