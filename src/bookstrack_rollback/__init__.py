"""Verification and drill suite for BooksTrack API rollbacks.

Sub-packages by concern; ``staging`` is the embedded staging, reached only through
:func:`bookstrack_rollback.staging.start_in_thread` / :func:`create_app` and the HTTP it serves.
"""

__version__ = "0.1.0"
