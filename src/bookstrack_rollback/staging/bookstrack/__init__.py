"""The BooksTrack API (contract/bookstrack-api.md) with fault injection and telemetry."""
