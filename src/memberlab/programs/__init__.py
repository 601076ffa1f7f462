"""Program definitions: the file format, its validation, and stored, versioned programs."""
